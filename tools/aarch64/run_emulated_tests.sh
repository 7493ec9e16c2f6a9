#!/usr/bin/env bash
# Test the aarch64 wheel on x86_64: an arm64 Debian chroot (tools/build_wheels.sh makes it) run
# under qemu-user-static, emulating a Raspberry Pi 4 core (cortex-a72).
#
#   tools/aarch64/run_emulated_tests.sh dist/edgeface-*-manylinux_2_17_aarch64.whl [--with-openvino]
#
# Runs: import + `edgeface info`, the C++ kernels bit for bit against the x86_64 wheel on the same
# inputs (core_reference.py), the README demo `edgeface detect examples/astronaut.jpg`, and the
# pytest subset listed in emulated_tests.txt, without network. Needs root (chroot, mounts in a
# private namespace, gone when the script ends) and qemu-user-static. The aarch64 wheels of the
# dependencies are downloaded once into build/aarch64/wheels; later runs are offline.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
CACHE=$REPO/build/aarch64
ROOT=$CACHE/sysroot
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

WHEEL=""
WITH_OPENVINO=0
for arg in "$@"; do
  case "$arg" in
    --with-openvino) WITH_OPENVINO=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *.whl) WHEEL=$(realpath "$arg") ;;
    *) echo "unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$WHEEL" ] || { echo "usage: $0 WHEEL [--with-openvino]" >&2; exit 2; }

# --- inside the private mount namespace (see the end of this file) ---------------------------
if [ "${EDGEFACE_EMULATED_INSIDE:-}" = 1 ]; then
  mkdir -p "$ROOT"/{proc,sys,dev,tmp,src,site,shared/data}
  mount -t proc proc "$ROOT/proc"
  # qemu-user shows the host's /proc/cpuinfo, on which onnxruntime's cpuinfo crashes: show an
  # arm64 one (4 x Cortex-A72, a Raspberry Pi 4).
  mount --bind "$CACHE/cpuinfo" "$ROOT/proc/cpuinfo"
  mount -t sysfs sysfs "$ROOT/sys"   # OpenVINO's compile_model segfaults without /sys
  mount --rbind /dev "$ROOT/dev"
  mount -t tmpfs tmpfs "$ROOT/tmp"
  mount --bind -o ro "$REPO" "$ROOT/src"
  mount --bind -o ro "$CACHE/site" "$ROOT/site"
  DATA=${EDGEFACE_DATA:-$REPO/../shared/data}
  [ -d "$DATA" ] && mount --bind -o ro "$DATA" "$ROOT/shared/data"

  CHROOT=$(command -v chroot)
  arm() {  # run the arm64 Python in the chroot
    env -i PATH=/usr/bin HOME=/tmp LANG=C.UTF-8 PYTHONPATH=/site/edgeface:/site/deps PYTHONDONTWRITEBYTECODE=1 \
      QEMU_CPU=cortex-a72 EDGEFACE_DATA=/shared/data \
      "$CHROOT" "$ROOT" /usr/bin/qemu-aarch64-static /usr/bin/python3.11 "$@"
  }
  step() {  # step NAME COMMAND...: run, time, record
    local t0 rc=0 ms
    t0=$(date +%s%N)
    echo "== $1"
    shift
    "$@" || rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    echo "-- $((ms / 1000)).$(( ms % 1000 / 100 )) s, exit $rc"
    return "$rc"
  }
  cp "$CACHE/core_reference.npz" "$ROOT/tmp/"
  status=0
  step "import and info" arm -c "import platform, edgeface, edgeface._core as c; print(platform.machine(), c.__file__)
from edgeface.cli import main; raise SystemExit(main(['info']))" || status=1
  step "C++ kernels vs x86_64 (bit-identical)" arm /src/tools/aarch64/core_reference.py compare /tmp/core_reference.npz \
    || status=1
  step "demo: edgeface detect examples/astronaut.jpg" arm /site/edgeface/bin/edgeface detect /src/examples/astronaut.jpg \
    --draw /tmp/out || status=1
  test -s "$ROOT/tmp/out/astronaut.jpg" || { echo "the demo drew no image"; status=1; }
  mapfile -t TESTS < <(grep -v '^#' "$REPO/tools/aarch64/emulated_tests.txt" | grep . | sed 's|^|/src/|')
  step "pytest subset (tools/aarch64/emulated_tests.txt)" arm -m pytest -q -p no:cacheprovider \
    --rootdir /src -rs "${TESTS[@]}" || status=1
  if [ "$WITH_OPENVINO" = 1 ]; then
    step "demo on OpenVINO" arm /site/edgeface/bin/edgeface detect /src/examples/astronaut.jpg --backend openvino \
      || status=1
    step "pytest: MTCNN nets on OpenVINO" arm -m pytest -q -p no:cacheprovider --rootdir /src -rs \
      /src/tests/test_models_mtcnn.py -k openvino || status=1
  fi
  exit "$status"
fi

# --- outside: prepare, then re-run this script in a private mount namespace -----------------
[ "$(id -u)" = 0 ] || { echo "run as root (chroot and mounts)" >&2; exit 1; }
command -v qemu-aarch64-static >/dev/null || { echo "apt-get install qemu-user-static" >&2; exit 1; }
[ -x "$ROOT/usr/bin/python3.11" ] || { echo "no arm64 sysroot: run tools/build_wheels.sh first" >&2; exit 1; }
T0=$SECONDS

# Requirements of the default install: Requires-Dist lines without an extra marker.
mapfile -t REQS < <("$PY" - "$WHEEL" "$WITH_OPENVINO" <<'EOF'
import sys, zipfile
wheel, with_openvino = sys.argv[1], sys.argv[2] == "1"
with zipfile.ZipFile(wheel) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    lines = z.read(meta).decode().splitlines()
reqs = [l.split(":", 1)[1].strip() for l in lines if l.startswith("Requires-Dist:")]
default = [r for r in reqs if "extra ==" not in r]
# OpenVINO is optional (the edgeface[openvino] extra): test the ONNX Runtime default unless asked.
default = [r for r in default if with_openvino or not r.lower().startswith("openvino")]
if with_openvino and not any(r.lower().startswith("openvino") for r in default):
    default.append("openvino")
print("\n".join(default + ["pytest"]))
EOF
)
echo "aarch64 requirements: ${REQS[*]}"
PLATFORMS=(--platform manylinux2014_aarch64)
for minor in $(seq 17 36); do PLATFORMS+=(--platform "manylinux_2_${minor}_aarch64"); done  # bookworm: glibc 2.36
PIP_TARGET_ARGS=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 "${PLATFORMS[@]}")
STAMP="$CACHE/site/requirements.txt"
if ! { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(printf '%s\n' "${REQS[@]}")" ]; }; then
  rm -rf "$CACHE/site" && mkdir -p "$CACHE/wheels"
  "$PY" -m pip download -q -d "$CACHE/wheels" "${PIP_TARGET_ARGS[@]}" "${REQS[@]}"
  "$PY" -m pip install -q --no-index --find-links "$CACHE/wheels" --target "$CACHE/site/deps" \
    "${PIP_TARGET_ARGS[@]}" "${REQS[@]}"
  printf '%s\n' "${REQS[@]}" > "$STAMP"
fi
rm -rf "$CACHE/site/edgeface"
"$PY" -m pip install -q --no-index --no-deps --target "$CACHE/site/edgeface" "${PIP_TARGET_ARGS[@]}" "$WHEEL"
echo "installed for aarch64: $(ls "$CACHE/site/deps" "$CACHE/site/edgeface" | grep -i dist-info | sed 's/.dist-info//' | tr '\n' ' ')"

# The reference outputs of the kernels, from the x86_64 wheel when there is one (else the
# edgeface importable here).
X86_WHEEL=$(ls "$REPO"/dist/edgeface-*x86_64.whl 2>/dev/null | head -1 || true)
if [ -n "$X86_WHEEL" ]; then
  rm -rf "$CACHE/x86site"
  "$PY" -m pip install -q --no-deps --target "$CACHE/x86site" "$X86_WHEEL"
  PYTHONPATH=$CACHE/x86site "$PY" tools/aarch64/core_reference.py write "$CACHE/core_reference.npz"
else
  "$PY" tools/aarch64/core_reference.py write "$CACHE/core_reference.npz"
fi

cp "$(command -v qemu-aarch64-static)" "$ROOT/usr/bin/"
for cpu in 0 1 2 3; do
  printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$cpu"
done > "$CACHE/cpuinfo"
echo "prepared in $((SECONDS - T0)) s"

rc=0
# A private mount namespace (the mounts vanish with it) and an empty network namespace: the
# emulated run also proves that nothing needs the network at run time.
EDGEFACE_EMULATED_INSIDE=1 unshare --mount --net --propagation private "$0" "$@" || rc=$?
echo "== emulated run: exit $rc, $((SECONDS - T0)) s in all"
exit "$rc"
