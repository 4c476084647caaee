"""Tensor helpers and the prefetch thread; needs numpy and torch, not pyarrow."""

import threading
import unittest

from helpers import require


@require("numpy", "torch")
class HostTensorsTest(unittest.TestCase):
    def test_zero_copy_without_pinning(self):
        import numpy as np
        import torch
        from pipeline_client.torch_io import host_tensors

        views = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
        views.setflags(write=False)  # as Arrow's buffers are
        t = host_tensors({"q": views, "label": np.array([3, 4], dtype=np.int32)})
        self.assertEqual(t["q"].data_ptr(), views.ctypes.data, "the view tensor was copied")
        self.assertEqual(t["label"].dtype, torch.int64)
        self.assertEqual(t["label"].tolist(), [3, 4])


@require("numpy", "torch")
class NormalizeTest(unittest.TestCase):
    def test_matches_totensor_normalize(self):
        import torch
        from pipeline_client.torch_io import IMAGENET_MEAN, IMAGENET_STD, normalize

        g = torch.Generator().manual_seed(1)
        x = torch.randint(0, 256, (3, 2, 5, 7, 3), dtype=torch.uint8, generator=g)  # rows, views, H, W, C
        got = normalize(x)
        self.assertEqual(tuple(got.shape), (6, 3, 5, 7))
        self.assertTrue(got.is_contiguous(memory_format=torch.channels_last))
        ref = x.reshape(6, 5, 7, 3).permute(0, 3, 1, 2).float() / 255
        ref = (ref - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.assertLess((got - ref).abs().max().item(), 1e-5)

    def test_rejects_float_input(self):
        import torch
        from pipeline_client.torch_io import normalize

        with self.assertRaises(ValueError):
            normalize(torch.zeros(1, 4, 4, 3))


@require("torch")
class PrefetchTest(unittest.TestCase):
    def test_bounded_ordered_and_closed(self):
        from pipeline_client.dataset import prefetched

        made, closed = [], threading.Event()

        def source():
            try:
                for i in range(100):
                    made.append(i)
                    yield i
            finally:
                closed.set()

        it = prefetched(source, depth=2)
        self.assertEqual([next(it) for _ in range(5)], [0, 1, 2, 3, 4])
        # The thread may hold one item it is trying to put, beyond the two queued.
        self.assertLessEqual(len(made), 5 + 2 + 1)
        it.close()
        self.assertTrue(closed.wait(5), "leaving early did not close the source")

    def test_errors_reach_the_caller(self):
        from pipeline_client.dataset import prefetched

        def source():
            yield 1
            raise OSError("connection reset")

        it = prefetched(source, depth=2)
        self.assertEqual(next(it), 1)
        with self.assertRaisesRegex(OSError, "connection reset"):
            next(it)


if __name__ == "__main__":
    unittest.main()
