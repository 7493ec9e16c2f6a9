#!/usr/bin/env bash
# Builds edgeface._core with AddressSanitizer + UndefinedBehaviorSanitizer and runs, against that
# build, the core tests and the seeded fuzzer of every _core function (tools/fuzz_core.py).
#
#   tools/sanitize.sh                       # core tests + 100k fuzz inputs
#   FUZZ_ITERATIONS=1000000 tools/sanitize.sh
#
# Needs g++ (or clang++: CXX=clang++) with the sanitizer runtimes (Debian: apt-get install g++) and
# an environment where edgeface is installed (pip install -e ".[test]"). Any sanitizer report aborts
# the run with a non-zero exit code. The regular build is left untouched: the sanitized module is
# loaded in its place only inside this script's Python processes.
set -euo pipefail
cd "$(dirname "$0")/.."

CXX=${CXX:-g++}
PYTHON=${PYTHON:-python}
FUZZ_ITERATIONS=${FUZZ_ITERATIONS:-100000}
FUZZ_SEED=${FUZZ_SEED:-0}
BUILD=$(mktemp -d "${TMPDIR:-/tmp}/edgeface-sanitize.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT

SUFFIX=$("$PYTHON" -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
MODULE="$BUILD/_core$SUFFIX"
echo "building $MODULE with $CXX -fsanitize=address,undefined"
# shellcheck disable=SC2046  # pybind11 --includes is a list of -I flags
"$CXX" -std=c++17 -O1 -g -fno-omit-frame-pointer -fPIC -shared \
    -fsanitize=address,undefined -fno-sanitize-recover=undefined \
    $("$PYTHON" -m pybind11 --includes) -Isrc/cpp src/cpp/*.cpp -o "$MODULE"

# The Python interpreter is not built with ASan, so the runtime must be loaded first.
if [[ "$CXX" == *clang* ]]; then
    ASAN_LIB=$("$CXX" -print-file-name=libclang_rt.asan-"$(uname -m)".so)
else
    ASAN_LIB=$("$CXX" -print-file-name=libasan.so)
fi
# libstdc++ is preloaded too, or ASan cannot find the real __cxa_throw when the module throws.
export LD_PRELOAD="$ASAN_LIB $("$CXX" -print-file-name=libstdc++.so)"
# Leak checking would report the interpreter's own intentional leaks at exit.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export EDGEFACE_SANITIZED_CORE="$MODULE"

# Imports the sanitized build as edgeface._core before anything else can import the regular one.
read -r -d '' PRELOAD <<'EOF' || true
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("edgeface._core", os.environ["EDGEFACE_SANITIZED_CORE"])
module = importlib.util.module_from_spec(spec)
sys.modules["edgeface._core"] = module
spec.loader.exec_module(module)
import edgeface
edgeface._core = module
assert edgeface._core.__file__ == os.environ["EDGEFACE_SANITIZED_CORE"]
EOF

echo "== core tests (sanitized build)"
"$PYTHON" -c "$PRELOAD
import pytest
sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/test_core_align.py', 'tests/test_core_boxes.py',
                      'tests/test_core_nms.py', 'tests/test_core_pyramid.py', 'tests/test_core_gil.py',
                      'tests/test_core_fuzz.py',
                      # Meaningless under ASan: an RSS bound (ASan's quarantine keeps
                      # freed memory mapped; ASan itself reports real leaks and use-after-free).
                      '--deselect', 'tests/test_core_gil.py::test_no_leak_in_repeated_calls']))"

echo "== fuzzer: $FUZZ_ITERATIONS inputs, seed $FUZZ_SEED (sanitized build)"
"$PYTHON" -c "$PRELOAD
sys.path.insert(0, 'tools')
import fuzz_core
sys.exit(fuzz_core.main(['--iterations', '$FUZZ_ITERATIONS', '--seed', '$FUZZ_SEED']))"
echo "sanitize: OK"
