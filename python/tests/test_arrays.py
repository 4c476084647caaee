"""Arrow columns to numpy without copies: the extension type and plain storage; needs pyarrow."""

import json
import unittest

from helpers import require


@require("numpy", "pyarrow")
class BatchArraysTest(unittest.TestCase):
    def setUp(self):
        import numpy as np

        self.pixels = (np.arange(3 * 2 * 4 * 4 * 3) % 251).astype(np.uint8)  # 3 rows x 2 views x 4x4x3

    def batch(self, views_column, name="q"):
        import pyarrow as pa

        rows = len(views_column)  # 3 rows of two views, or 6 of one
        return pa.record_batch([views_column, pa.array(range(1, rows + 1), pa.int32()),
                                pa.array(range(10, 10 + rows), pa.int64())], names=[name, "label", "index"])

    def storage(self, n):
        import pyarrow as pa

        return pa.FixedSizeListArray.from_arrays(pa.array(self.pixels), n)

    def test_fixed_shape_tensor_through_ipc_is_zero_copy(self):
        import pyarrow as pa
        from pipeline_client.arrays import batch_arrays

        typ = pa.fixed_shape_tensor(pa.uint8(), [2, 4, 4, 3])
        batch = self.batch(pa.ExtensionArray.from_storage(typ, self.storage(96)))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as w:
            w.write_batch(batch)
        wire = sink.getvalue()
        got = pa.ipc.open_stream(wire).read_next_batch()
        self.assertIsInstance(got.schema.field("q").type, pa.FixedShapeTensorType)
        out = batch_arrays(got)
        self.assertEqual(out["q"].shape, (3, 2, 4, 4, 3))
        self.assertEqual(out["q"].tobytes(), self.pixels.tobytes())
        self.assertTrue(wire.address <= out["q"].ctypes.data < wire.address + wire.size,
                        "the views were copied out of the IPC buffer")
        self.assertEqual(out["label"].tolist(), [1, 2, 3])
        self.assertEqual(out["index"].tolist(), [10, 11, 12])

    def test_plain_storage_square_guess_and_slices(self):
        from pipeline_client.arrays import batch_arrays

        batch = self.batch(self.storage(48))  # one 4x4x3 view per row... 6 rows
        out = batch_arrays(batch.slice(0, 3))
        self.assertEqual(out["q"].shape, (3, 4, 4, 3))
        sliced = batch_arrays(batch.slice(1, 2))["q"]
        self.assertEqual(sliced.tobytes(), self.pixels[48:144].tobytes(), "slice offset ignored")

    def test_plain_storage_with_extension_metadata_or_explicit_shape(self):
        import pyarrow as pa
        from pipeline_client.arrays import batch_arrays

        md = {"ARROW:extension:name": "arrow.fixed_shape_tensor",
              "ARROW:extension:metadata": json.dumps({"shape": [2, 4, 4, 3]})}
        schema = pa.schema([pa.field("q", pa.list_(pa.uint8(), 96), metadata=md),
                            pa.field("label", pa.int32()), pa.field("index", pa.int64())])
        batch = pa.record_batch([self.storage(96), pa.array([1, 2, 3], pa.int32()),
                                 pa.array([10, 11, 12], pa.int64())], schema=schema)
        self.assertEqual(batch_arrays(batch)["q"].shape, (3, 2, 4, 4, 3))
        self.assertEqual(batch_arrays(self.batch(self.storage(96)), shapes={"q": (2, 4, 4, 3)})["q"].shape,
                         (3, 2, 4, 4, 3))

    def test_errors(self):
        import pyarrow as pa
        from pipeline_client.arrays import batch_arrays

        with self.assertRaisesRegex(ValueError, "shapes="):
            batch_arrays(self.batch(self.storage(96)))  # 96 bytes: no square RGB image
        with self.assertRaisesRegex(ValueError, "no view columns"):
            batch_arrays(pa.record_batch([pa.array([1])], names=["label"]))
        newer = self.batch(self.storage(48)).replace_schema_metadata({"pipeline.schema_version": "2"})
        with self.assertRaisesRegex(ValueError, "schema version 2"):
            batch_arrays(newer)


if __name__ == "__main__":
    unittest.main()
