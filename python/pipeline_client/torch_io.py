"""numpy batches to torch: pinned host tensors, non-blocking copies, normalisation on the GPU."""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence, Union

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def host_tensors(arrays: Mapping[str, np.ndarray], pin_memory: bool = False) -> dict[str, torch.Tensor]:
    """Wraps each array as a tensor without copying; with pin_memory, copies it once into
    page-locked memory so that the copy to the GPU can be asynchronous. Labels become int64."""
    out = {}
    for name, a in arrays.items():
        with warnings.catch_warnings():
            # Arrow buffers are read-only; nothing here writes to them.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            t = torch.from_numpy(a)
        if name in ("label", "index"):
            t = t.to(torch.int64)
        if pin_memory:
            t = t.pin_memory()
        out[name] = t
    return out


def to_device(batch: Mapping[str, torch.Tensor], device: Union[str, torch.device],
              non_blocking: bool = True) -> dict[str, torch.Tensor]:
    """Copies every tensor to device; asynchronous when the source is pinned."""
    return {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items()}


def normalize(x: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 views [..., H, W, 3] (on the GPU) to normalised float [N, 3, H, W].

    Leading dimensions (rows, views of a group) fold into N. The result is channels_last in
    memory, which is the HWC layout the views arrive in, so no transpose is copied; it is what
    convolutions on tensor cores prefer anyway. Computes (x / 255 - mean) / std like torchvision's
    ToTensor + Normalize, as a multiply and an add (equal up to float rounding).
    """
    if x.dtype != torch.uint8 or x.shape[-1] != 3:
        raise ValueError(f"want uint8 [..., H, W, 3], got {x.dtype} {tuple(x.shape)}")
    h, w = x.shape[-3], x.shape[-2]
    x = x.reshape(-1, h, w, 3).permute(0, 3, 1, 2)  # NCHW view of NHWC memory
    mean_t = torch.tensor(mean, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
    scale = 1.0 / (255.0 * std_t)
    shift = -mean_t / std_t
    out = x.to(torch.float32).contiguous(memory_format=torch.channels_last)
    out.mul_(scale).add_(shift)
    return out.to(dtype)
