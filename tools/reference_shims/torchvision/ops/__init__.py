"""Test-reference shim: only torchvision.ops.boxes.batched_nms (see tools/reference_shims/README.md)."""
