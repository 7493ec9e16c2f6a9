// Argument conversion and validation shared by the bindings. Everything here runs with the
// GIL held and throws the edgeface exception types of errors.hpp (translated to Python in
// bindings.cpp). Arrays are never silently cast: the dtype is checked first, then a
// C-contiguous view is taken (a copy only when the input is not C-contiguous).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "errors.hpp"

namespace edgeface {
namespace checks {

namespace py = pybind11;

template <typename T>
using carray = py::array_t<T, py::array::c_style>;

inline std::string type_name(py::handle h) { return Py_TYPE(h.ptr())->tp_name; }

inline std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        if (i) s += ", ";
        s += std::to_string(a.shape(i));
    }
    if (a.ndim() == 1) s += ",";
    return s + ")";
}

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// "<name> must be <expected>, got <dtype> <shape>"
inline std::string mismatch(const char* name, const std::string& expected, const py::array& a) {
    return std::string(name) + " must be " + expected + ", got " + dtype_str(a) + " " +
           shape_str(a);
}

inline py::array as_ndarray(py::handle obj, const char* name, const std::string& expected) {
    if (!py::isinstance<py::array>(obj)) {
        throw InvalidDType(std::string(name) + " must be a numpy array (" + expected + "), got " +
                           type_name(obj));
    }
    return py::reinterpret_borrow<py::array>(obj);
}

template <typename T>
inline bool is_dtype(const py::array& a) {
    return a.dtype().equal(py::dtype::of<T>());
}

template <typename T>
inline carray<T> contiguous(const py::array& a) {
    // Same dtype already checked: no cast, and no copy when already C-contiguous.
    auto r = carray<T>::ensure(a);
    if (!r) throw py::error_already_set();
    return r;
}

// Array of dtype T and rank `dims.size()`; dims entries < 0 are free. Returns a C-contiguous
// array. Wrong dtype -> InvalidDType, wrong shape -> InvalidArgument.
template <typename T>
carray<T> get_array(py::handle obj, const char* name, const std::string& expected,
                    std::initializer_list<py::ssize_t> dims) {
    py::array a = as_ndarray(obj, name, expected);
    if (!is_dtype<T>(a)) throw InvalidDType(mismatch(name, expected, a));
    bool ok = a.ndim() == static_cast<py::ssize_t>(dims.size());
    if (ok) {
        py::ssize_t i = 0;
        for (py::ssize_t d : dims) {
            if (d >= 0 && a.shape(i) != d) ok = false;
            ++i;
        }
    }
    if (!ok) throw InvalidArgument(mismatch(name, expected, a));
    return contiguous<T>(a);
}

// A BGR/RGB image: uint8, (H, W, 3), non-empty, not too large. Checked before any copy so
// that huge (e.g. broadcast) inputs are rejected without allocating.
inline carray<uint8_t> get_image(py::handle obj, const char* name = "image") {
    const std::string expected = "uint8 of shape (H, W, 3)";
    py::array a = as_ndarray(obj, name, expected);
    if (!is_dtype<uint8_t>(a) || a.ndim() != 3 || a.shape(2) != 3) {
        throw ImageError(mismatch(name, expected, a));
    }
    const long long h = a.shape(0), w = a.shape(1);
    if (h == 0 || w == 0) throw ImageError(std::string(name) + " is empty, got shape " + shape_str(a));
    if (h > kMaxImageSide || w > kMaxImageSide || h * w > kMaxImagePixels) {
        throw ImageError(std::string(name) + " is too large: sides must be <= 32768 and " +
                         "H*W <= 2**28 pixels, got shape " + shape_str(a));
    }
    return contiguous<uint8_t>(a);
}

inline bool is_numpy_scalar(py::handle h) {
    static py::handle generic = [] {
        return py::object(py::module_::import("numpy").attr("generic")).release();
    }();
    return PyObject_IsInstance(h.ptr(), generic.ptr()) == 1;
}

inline double to_double(py::handle h, const char* name) {
    const bool ok = PyFloat_Check(h.ptr()) || PyLong_Check(h.ptr()) ||
                    (is_numpy_scalar(h) && PyNumber_Check(h.ptr()));
    if (!ok) {
        throw InvalidDType(std::string(name) + " must be a real number, got " + type_name(h));
    }
    const double v = PyFloat_AsDouble(h.ptr());
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        throw InvalidDType(std::string(name) + " must be a real number, got " + type_name(h));
    }
    return v;
}

inline double to_finite(py::handle h, const char* name) {
    const double v = to_double(h, name);
    if (!std::isfinite(v)) {
        throw InvalidArgument(std::string(name) + " must be finite, got " + std::to_string(v));
    }
    return v;
}

inline long long to_int(py::handle h, const char* name) {
    if (PyFloat_Check(h.ptr()) || !PyIndex_Check(h.ptr())) {
        throw InvalidDType(std::string(name) + " must be an int, got " + type_name(h));
    }
    py::object idx = py::reinterpret_steal<py::object>(PyNumber_Index(h.ptr()));
    if (!idx) {
        PyErr_Clear();
        throw InvalidDType(std::string(name) + " must be an int, got " + type_name(h));
    }
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(idx.ptr(), &overflow);
    if (overflow != 0 || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        throw InvalidArgument(std::string(name) + " is out of range, got " +
                              py::str(h).cast<std::string>());
    }
    return v;
}

inline long long to_int_in(py::handle h, const char* name, long long lo, long long hi) {
    const long long v = to_int(h, name);
    if (v < lo || v > hi) {
        throw InvalidArgument(std::string(name) + " must be in [" + std::to_string(lo) + ", " +
                              std::to_string(hi) + "], got " + std::to_string(v));
    }
    return v;
}

inline bool to_bool(py::handle h, const char* name) {
    if (PyBool_Check(h.ptr())) return h.ptr() == Py_True;
    if (is_numpy_scalar(h) &&
        py::str(py::getattr(h, "dtype")).cast<std::string>() == "bool") {
        return PyObject_IsTrue(h.ptr()) == 1;
    }
    throw InvalidDType(std::string(name) + " must be a bool, got " + type_name(h));
}

inline std::string to_str(py::handle h, const char* name) {
    if (!PyUnicode_Check(h.ptr())) {
        throw InvalidDType(std::string(name) + " must be a str, got " + type_name(h));
    }
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(h.ptr(), &size);
    if (utf8 == nullptr) {  // lone surrogates cannot be encoded
        PyErr_Clear();
        throw InvalidArgument(std::string(name) + " must be a str encodable as UTF-8 (no lone surrogates)");
    }
    return std::string(utf8, static_cast<size_t>(size));
}

// A 1-D sequence of real numbers (list, tuple or 1-D numeric numpy array).
inline std::vector<double> to_double_list(py::handle h, const char* name) {
    std::vector<double> out;
    if (py::isinstance<py::array>(h)) {
        py::array a = py::reinterpret_borrow<py::array>(h);
        const char kind = a.dtype().kind();
        if (kind != 'f' && kind != 'i' && kind != 'u') {
            throw InvalidDType(mismatch(name, "a 1-D sequence of real numbers", a));
        }
        if (a.ndim() != 1) {
            throw InvalidArgument(mismatch(name, "a 1-D sequence of real numbers", a));
        }
        auto d = carray<double>::ensure(a.attr("astype")("float64"));
        out.assign(d.data(), d.data() + d.size());
        return out;
    }
    if (PyUnicode_Check(h.ptr()) || PyBytes_Check(h.ptr()) || !PySequence_Check(h.ptr())) {
        throw InvalidDType(std::string(name) + " must be a sequence of real numbers, got " +
                           type_name(h));
    }
    py::sequence seq = py::reinterpret_borrow<py::sequence>(h);
    out.reserve(seq.size());
    for (py::handle item : seq) out.push_back(to_double(item, name));
    return out;
}

inline void check_threshold01(double t, const char* name) {
    if (!(t >= 0.0 && t <= 1.0)) {
        throw InvalidArgument(std::string(name) + " must be in [0, 1], got " + std::to_string(t));
    }
}

}  // namespace checks
}  // namespace edgeface
