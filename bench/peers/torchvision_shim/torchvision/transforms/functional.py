# BENCH-ONLY STAND-IN, NOT TORCHVISION. Written for edgeface's peer benchmark (bench/peers) because
# torchvision cannot be installed next to the CPU torch 2.13.0 wheel on the benchmark machine, while
# facenet-pytorch 2.6.0 imports it. It provides only what facenet-pytorch's import chain and MTCNN use:
# torchvision.ops.boxes.batched_nms and torchvision.transforms.functional.to_tensor.
# Put bench/peers/torchvision_shim on sys.path (peer.py does) to use it; never ship or install it.
"""to_tensor with torchvision's semantics (bench-only; NOT torchvision)."""
from __future__ import annotations

import numpy as np
import torch


def to_tensor(pic) -> torch.Tensor:
    """PIL image or HxW(xC) ndarray -> CxHxW tensor; uint8 input is scaled to [0, 1] float."""
    if isinstance(pic, torch.Tensor):
        raise TypeError("to_tensor expects a PIL image or a numpy array")
    if not isinstance(pic, np.ndarray):  # PIL image
        mode = pic.mode
        arr = np.array(pic, dtype=np.int32 if mode == "I" else (np.float32 if mode == "F" else None),
                       copy=True)
        if mode == "1":
            arr = 255 * arr.astype(np.uint8)
        pic = arr
    if pic.ndim == 2:
        pic = pic[:, :, None]
    img = torch.from_numpy(np.ascontiguousarray(pic.transpose((2, 0, 1)))).contiguous()
    if img.dtype == torch.uint8:
        return img.to(torch.get_default_dtype()).div(255)
    return img
