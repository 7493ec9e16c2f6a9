# CMake toolchain: cross-compile the edgeface core for aarch64 Linux (manylinux_2_17) on x86_64
# with zig's clang. Used by tools/build_wheels.sh; see docs/edge.md.
#
# EDGEFACE_AARCH64_SYSROOT (environment) is an arm64 Debian tree holding Python's headers
# (libpython3.11-dev:arm64 unpacked with dpkg -x); default: build/aarch64/sysroot in the repo.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(_edgeface_tools "${CMAKE_CURRENT_LIST_DIR}")
set(CMAKE_CXX_COMPILER "${_edgeface_tools}/zig-c++")
set(CMAKE_AR "${_edgeface_tools}/zig-ar" CACHE FILEPATH "" FORCE)
set(CMAKE_RANLIB "${_edgeface_tools}/zig-ranlib" CACHE FILEPATH "" FORCE)
# The host's strip cannot read aarch64 objects; the module is stripped at link time (-s in
# CMakeLists.txt), so pybind11's post-build strip is skipped.
set(CMAKE_STRIP "" CACHE FILEPATH "" FORCE)

if(DEFINED ENV{EDGEFACE_AARCH64_SYSROOT})
  set(_edgeface_sysroot "$ENV{EDGEFACE_AARCH64_SYSROOT}")
else()
  get_filename_component(_edgeface_sysroot "${_edgeface_tools}/../../build/aarch64/sysroot" ABSOLUTE)
endif()
set(CMAKE_FIND_ROOT_PATH "${_edgeface_sysroot}")
# Debian's python3.11/pyconfig.h includes <aarch64-linux-gnu/python3.11/pyconfig.h>; searched
# after zig's own libc headers (the sysroot holds no libc headers, only Python's).
set(CMAKE_CXX_FLAGS_INIT "-idirafter ${_edgeface_sysroot}/usr/include")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)  # pybind11's CMake config comes from the host

# FindPython asks the (x86_64) build interpreter for these; force the target's values, else
# the module is built against x86 headers and named ...x86_64-linux-gnu.so.
set(_edgeface_py "3.11")
set(Python_INCLUDE_DIR "${_edgeface_sysroot}/usr/include/python${_edgeface_py}" CACHE PATH "" FORCE)
set(Python_SOABI "cpython-311-aarch64-linux-gnu" CACHE STRING "" FORCE)
set(PYTHON_MODULE_EXTENSION ".cpython-311-aarch64-linux-gnu.so" CACHE STRING "" FORCE)
set(PYTHON_MODULE_DEBUG_POSTFIX "" CACHE STRING "" FORCE)
