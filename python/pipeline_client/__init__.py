"""Client of the pipeline's socket and Flight sinks: Arrow record batches in, torch tensors out.

    from pipeline_client import PipelineDataset, normalize, to_device
    for batch in PipelineDataset("unix:///tmp/p.sock"):
        gpu = to_device(batch, "cuda")
        q, k = normalize(gpu["q"]), normalize(gpu["k"])

pyarrow is needed to read streams, torch for the dataset and tensor helpers; the protocol
module needs neither. See docs/transport.md.
"""

from typing import TYPE_CHECKING

from .protocol import HandshakeRefused, StreamAborted, parse_address

if TYPE_CHECKING:  # what __getattr__ imports on first use, for type checkers and IDEs
    from .arrays import batch_arrays
    from .dataset import PipelineDataset
    from .producer import Producer, find_pipeline, pipeline_run
    from .stream import open_batches
    from .torch_io import host_tensors, normalize, to_device

__all__ = ["HandshakeRefused", "StreamAborted", "parse_address", "PipelineDataset", "normalize",
           "to_device", "host_tensors", "open_batches", "batch_arrays", "Producer",
           "find_pipeline", "pipeline_run"]


def __getattr__(name: str):
    # Imported on first use, so that the protocol works without pyarrow or torch.
    if name in ("PipelineDataset",):
        from .dataset import PipelineDataset
        return PipelineDataset
    if name in ("normalize", "to_device", "host_tensors"):
        from . import torch_io
        return getattr(torch_io, name)
    if name == "open_batches":
        from .stream import open_batches
        return open_batches
    if name == "batch_arrays":
        from .arrays import batch_arrays
        return batch_arrays
    if name in ("Producer", "find_pipeline", "pipeline_run"):
        from . import producer
        return getattr(producer, name)
    raise AttributeError(name)
