"""Test-reference shim of torchvision.transforms.functional.to_tensor for numpy HWC input."""
from __future__ import annotations

import numpy as np
import torch


def to_tensor(pic: np.ndarray) -> torch.Tensor:
    """HWC -> CHW float tensor; uint8 is scaled to [0, 1] like torchvision."""
    tensor = torch.from_numpy(np.ascontiguousarray(pic)).permute(2, 0, 1).contiguous()
    return tensor.float().div(255) if tensor.dtype == torch.uint8 else tensor.float()
