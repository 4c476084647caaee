"""The batch schema's version check (docs/arrow-schema.md); needs neither pyarrow nor torch."""

from __future__ import annotations

SCHEMA_VERSION = b"1"  # the version of docs/arrow-schema.md this client reads


def check_metadata(metadata: dict[bytes, bytes] | None) -> None:
    """Raises ValueError when a batch schema's metadata names a version this client does not
    read, or float32 views (the `batch.normalize: true` variant is for Go and file readers).
    Batches without the metadata (made by other tools) are read as plain Arrow columns."""
    md = metadata or {}
    version = md.get(b"pipeline.schema_version")
    if version is not None and version != SCHEMA_VERSION:
        raise ValueError(f"batch schema version {version.decode(errors='replace')}, this client reads "
                         f"{SCHEMA_VERSION.decode()}: use the client of the same pipeline version")
    if b"pipeline.normalize" in md:
        raise ValueError("the batches are normalised float32 (batch.normalize: true); this client reads "
                         "uint8 views and normalises on the GPU: set batch.normalize: false")
