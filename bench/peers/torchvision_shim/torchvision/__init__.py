# BENCH-ONLY STAND-IN, NOT TORCHVISION. Written for edgeface's peer benchmark (bench/peers) because
# torchvision cannot be installed next to the CPU torch 2.13.0 wheel on the benchmark machine, while
# facenet-pytorch 2.6.0 imports it. It provides only what facenet-pytorch's import chain and MTCNN use:
# torchvision.ops.boxes.batched_nms and torchvision.transforms.functional.to_tensor.
# Put bench/peers/torchvision_shim on sys.path (peer.py does) to use it; never ship or install it.
"""Bench-only stand-in for torchvision (see header); NOT the real package."""
__version__ = "0.0.0+edgeface-bench-shim"
from . import ops, transforms  # noqa: E402,F401
