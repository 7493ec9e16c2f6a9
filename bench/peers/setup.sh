#!/usr/bin/env bash
# Creates bench/peers/.venv with the peers edgeface is benchmarked against (face_recognition,
# facenet-pytorch MTCNN, OpenCV Haar), every package pinned to an exact version from the registries.
# Idempotent: re-running only installs what is missing or at another version. Prints versions at the end.
#
#   bash bench/peers/setup.sh            # uses python3 from PATH
#   PYTHON=/path/to/python3.11 bash bench/peers/setup.sh
#
# Why the --no-deps installs:
# - face_recognition 1.3.0 depends on `dlib`, which pip would build from source (minutes of C++ with
#   cmake); `dlib-bin` is the same dlib as a prebuilt wheel. face_recognition_models imports
#   pkg_resources, which setuptools dropped in 82; torch 2.13 requires setuptools>=77.0.3, so the pin
#   is 80.9.0 (has pkg_resources, satisfies torch). The usual advice "setuptools<70" conflicts with
#   torch 2.13.
# - facenet-pytorch 2.6.0 pins torch<2.3, numpy<2, Pillow<10.3 and torchvision<0.18. We run it on
#   torch 2.13.0 (CPU); torchvision is not installable next to it here, so bench/peers/torchvision_shim
#   provides the two functions facenet-pytorch imports (a bench-only stand-in, see its header).
# - opencv-python-headless stays on 4.x: the 5.x wheels no longer have cv2.CascadeClassifier nor the
#   haarcascade_*.xml files (cv2.data.haarcascades is an empty folder there).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PYTHON="${PYTHON:-python3}"

FACE_RECOGNITION=1.3.0
FACE_RECOGNITION_MODELS=0.3.0
DLIB_BIN=20.0.1.post1
FACENET_PYTORCH=2.6.0
TORCH=2.13.0
NUMPY=2.4.6
PILLOW=13.0.0
CLICK=8.5.1
SETUPTOOLS=80.9.0
REQUESTS=2.34.2
TQDM=4.70.1
OPENCV=4.14.0.94
PSUTIL=7.2.2

start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  echo "[peers] creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

# Libraries with their own dependencies resolved normally (all exact pins).
"${PIP[@]}" install \
  "torch==$TORCH" \
  "numpy==$NUMPY" \
  "Pillow==$PILLOW" \
  "Click==$CLICK" \
  "setuptools==$SETUPTOOLS" \
  "requests==$REQUESTS" \
  "tqdm==$TQDM" \
  "opencv-python-headless==$OPENCV" \
  "psutil==$PSUTIL" \
  "dlib-bin==$DLIB_BIN" \
  "face-recognition-models==$FACE_RECOGNITION_MODELS"

# The two peers whose declared dependencies cannot be met here, without their dependencies.
"${PIP[@]}" install --no-deps \
  "face_recognition==$FACE_RECOGNITION" \
  "facenet-pytorch==$FACENET_PYTORCH"

echo "[peers] setup took $(( $(date +%s) - start )) s"
# Import check + versions (the torchvision stand-in goes on the path only for this check and peer.py).
PYTHONPATH="$HERE/torchvision_shim" "$VENV/bin/python" - <<'EOF'
import importlib.metadata as md, warnings
warnings.filterwarnings("ignore")
import cv2, dlib, numpy, torch, PIL, psutil
import face_recognition, facenet_pytorch
print("[peers] imports ok; versions:")
for dist in ("face_recognition", "face-recognition-models", "dlib-bin", "facenet-pytorch", "torch",
             "numpy", "Pillow", "opencv-python-headless", "setuptools", "Click", "requests", "tqdm",
             "psutil"):
    print(f"  {dist:24s} {md.version(dist)}")
print(f"  {'dlib (runtime)':24s} {dlib.__version__}  (DLIB_USE_BLAS={getattr(dlib, 'DLIB_USE_BLAS', '?')})")
print(f"  {'cv2 (runtime)':24s} {cv2.__version__}")
EOF
