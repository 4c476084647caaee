"""The schema version check; needs neither pyarrow nor torch."""

import unittest

import helpers  # noqa: F401  (puts pipeline_client on sys.path)
from pipeline_client import schema


class CheckMetadataTest(unittest.TestCase):
    def test_current_version_or_none_passes(self):
        schema.check_metadata({b"pipeline.schema_version": b"1", b"pipeline.recipe": b"mocov2"})
        schema.check_metadata(None)  # a batch some other tool made: plain Arrow columns
        schema.check_metadata({b"owner": b"someone"})

    def test_refusals_say_why(self):
        for md, want in [
            ({b"pipeline.schema_version": b"2"}, "version 2, this client reads 1"),
            ({b"pipeline.schema_version": b"1", b"pipeline.normalize": b'{"mean":[0.5]}'}, "batch.normalize: false"),
        ]:
            with self.assertRaisesRegex(ValueError, want, msg=repr(md)):
                schema.check_metadata(md)


if __name__ == "__main__":
    unittest.main()
