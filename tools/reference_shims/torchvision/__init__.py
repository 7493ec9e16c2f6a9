"""Test-reference shim standing in for torchvision (see tools/reference_shims/README.md)."""
