"""Test-reference shim: only torchvision.transforms.functional.to_tensor (see tools/reference_shims/README.md)."""
