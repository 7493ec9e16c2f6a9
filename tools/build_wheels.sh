#!/usr/bin/env bash
# Build edgeface's wheels on an x86_64 Debian machine: the native x86_64 wheel and a cross-compiled
# manylinux_2_17 aarch64 wheel (Raspberry Pi 4/5, Jetson). With --test, run the aarch64 wheel's
# test subset in an arm64 Debian chroot under qemu-user-static.
#
#   tools/build_wheels.sh            # dist/edgeface-*-x86_64.whl and dist/edgeface-*-aarch64.whl
#   tools/build_wheels.sh --test     # ... then the emulated tests (root: chroot + mounts)
#   tools/build_wheels.sh --aarch64-only [--test] [--with-openvino]
#
# Needs: a Python 3.11 environment with scikit-build-core, pybind11, ziglang, wheel, auditwheel,
# numpy, onnxruntime and opencv-python-headless (the x86 reference run); apt-get (arm64 Debian
# packages) and, for --test, qemu-user-static and root. Downloads (Debian packages, aarch64
# wheels) are cached under build/aarch64/ (gitignored); once cached, builds and tests are offline.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

RUN_TESTS=0
BUILD_X86=1
TEST_ARGS=()
for arg in "$@"; do
  case "$arg" in
    --test) RUN_TESTS=1 ;;
    --with-openvino) TEST_ARGS+=(--with-openvino) ;;
    --aarch64-only) BUILD_X86=0 ;;
    -h|--help) sed -n "2,14p" "$0"; exit 0 ;;
    *) echo "unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}
PYVER=3.11            # the arm64 Debian (bookworm) Python the wheel is built and tested for
CACHE=$REPO/build/aarch64
SYSROOT=$CACHE/sysroot
DIST=$REPO/dist
AARCH64_TAG=manylinux_2_17_aarch64.manylinux2014_aarch64
mkdir -p "$CACHE/debs" "$DIST"
export PIP_DISABLE_PIP_VERSION_CHECK=1

"$PY" -c "import sys; assert sys.version_info[:2] == (3, 11), 'run with Python 3.11 (the wheel is cp311)'"
"$PY" -c "import scikit_build_core, pybind11, ziglang, wheel, auditwheel" 2>/dev/null || {
  echo "missing build tools: $PY -m pip install scikit-build-core pybind11 ziglang wheel auditwheel" >&2; exit 1; }

# Runtime of python3.11 on arm64 Debian bookworm (plus its headers for the build). Listed by
# hand, not resolved, so that the tree stays small and the same on every run.
DEBS=(libc6 libgcc-s1 gcc-12-base libstdc++6 zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5
      libzstd1 libsqlite3-0 libncursesw6 libtinfo6 libreadline8 libuuid1 libdb5.3 libcrypt1 libnsl2
      libtirpc3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2
      python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libpython3.11-dev)

fetch_sysroot() {
  local missing=()
  for p in "${DEBS[@]}"; do
    compgen -G "$CACHE/debs/${p}_*_arm64.deb" >/dev/null || missing+=("$p:arm64")
  done
  if ((${#missing[@]})); then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
      echo "arm64 packages are not available to apt; run as root once:" >&2
      echo "  dpkg --add-architecture arm64 && apt-get update" >&2
      exit 1
    fi
    (cd "$CACHE/debs" && apt-get download "${missing[@]}")
  fi
  if [ ! -x "$SYSROOT/usr/bin/python$PYVER" ]; then
    rm -rf "$SYSROOT.tmp" && mkdir -p "$SYSROOT.tmp"
    for deb in "$CACHE"/debs/*_arm64.deb; do dpkg -x "$deb" "$SYSROOT.tmp"; done
    # usrmerge: /lib/ld-linux-aarch64.so.1 is what every arm64 binary asks for.
    [ -e "$SYSROOT.tmp/lib" ] || ln -s usr/lib "$SYSROOT.tmp/lib"
    rm -rf "$SYSROOT" && mv "$SYSROOT.tmp" "$SYSROOT"
  fi
}

wheel_size() { stat -c %s "$1" | awk -v f="$(basename "$1")" '{printf "%s  %.2f MB\n", f, $1 / 1e6}'; }

build_x86_64() {
  local t0=$SECONDS
  rm -f "$DIST"/edgeface-*-linux_x86_64.whl "$DIST"/edgeface-*x86_64.whl
  "$PY" -m pip wheel . --no-deps --no-build-isolation -w "$DIST" -q \
    -C build-dir="$REPO/build/x86_64"
  X86_WHEEL=$(ls "$DIST"/edgeface-*x86_64.whl)
  echo "x86_64 wheel built in $((SECONDS - t0)) s"
}

build_aarch64() {
  local t0=$SECONDS out=$CACHE/wheel
  rm -rf "$out" "$CACHE/cmake" && mkdir -p "$out"
  rm -f "$DIST"/edgeface-*aarch64.whl
  EDGEFACE_AARCH64_SYSROOT=$SYSROOT "$PY" -m pip wheel . --no-deps --no-build-isolation -w "$out" -q \
    -C build-dir="$CACHE/cmake" \
    -C cmake.define.CMAKE_TOOLCHAIN_FILE="$REPO/tools/aarch64/toolchain.cmake"
  local built
  built=$(ls "$out"/edgeface-*.whl)
  # scikit-build-core tags the wheel with the build machine's platform; the contents are aarch64.
  # (auditwheel repair cannot run on an aarch64 wheel from x86; `auditwheel show` below checks
  # that the tag is right.)
  "$PY" -m wheel tags --remove --platform-tag "$AARCH64_TAG" "$built" >/dev/null
  mv "$out"/edgeface-*aarch64.whl "$DIST"/
  AARCH64_WHEEL=$(ls "$DIST"/edgeface-*aarch64.whl)
  local so
  so=$(unzip -Z1 "$AARCH64_WHEEL" | grep '_core.*\.so$')
  case "$so" in *aarch64-linux-gnu.so) ;; *) echo "wrong module name in the aarch64 wheel: $so" >&2; exit 1 ;; esac
  echo "aarch64 wheel built in $((SECONDS - t0)) s"
}

show_wheel() {
  "$PY" -m auditwheel show "$1" | tr '\n' ' ' | sed 's/  */ /g' | cut -c1-400
  echo
  wheel_size "$1"
}

START=$SECONDS
if [ "$BUILD_X86" = 1 ]; then build_x86_64; fi
fetch_sysroot
build_aarch64

echo "== wheels (built in $((SECONDS - START)) s)"
if [ "$BUILD_X86" = 1 ]; then show_wheel "$X86_WHEEL"; fi
show_wheel "$AARCH64_WHEEL"

if [ "$RUN_TESTS" = 1 ]; then
  exec tools/aarch64/run_emulated_tests.sh "$AARCH64_WHEEL" "${TEST_ARGS[@]}"
fi
