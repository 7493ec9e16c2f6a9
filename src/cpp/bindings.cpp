// Python bindings of the edgeface C++ core (module edgeface._core). Arguments are taken as
// plain Python objects and validated here (no silent dtype casts); computation runs with the
// GIL released; outputs are freshly allocated numpy arrays. See python/edgeface/_core.pyi.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string>
#include <vector>

#include "align.hpp"
#include "array_checks.hpp"
#include "boxes.hpp"
#include "errors.hpp"
#include "nms.hpp"
#include "pyramid.hpp"

namespace py = pybind11;
using namespace edgeface;
using namespace edgeface::checks;

namespace {

PyObject* g_invalid_argument = nullptr;
PyObject* g_invalid_dtype = nullptr;
PyObject* g_image_error = nullptr;

NmsMode parse_mode(py::handle h) {
    const std::string s = to_str(h, "mode");
    if (s == "iou") return NmsMode::IoU;
    if (s == "min") return NmsMode::Min;
    throw InvalidArgument("mode must be 'iou' or 'min', got '" + s + "'");
}

py::array_t<int64_t> to_index_array(const std::vector<int64_t>& v) {
    py::array_t<int64_t> out(static_cast<py::ssize_t>(v.size()));
    if (!v.empty()) std::memcpy(out.mutable_data(), v.data(), v.size() * sizeof(int64_t));
    return out;
}

struct BoxesScores {
    carray<float> boxes, scores;
    int64_t n;
};

BoxesScores get_boxes_scores(py::handle boxes_obj, py::handle scores_obj) {
    auto boxes = get_array<float>(boxes_obj, "boxes", "float32 of shape (N, 4)", {-1, 4});
    const int64_t n = boxes.shape(0);
    const std::string se = "float32 of shape (N,) with N = len(boxes) = " + std::to_string(n);
    auto scores = get_array<float>(scores_obj, "scores", se, {static_cast<py::ssize_t>(n)});
    return {boxes, scores, n};
}

py::array_t<int64_t> py_nms(py::handle boxes_obj, py::handle scores_obj, py::handle threshold,
                            py::handle mode_obj) {
    auto bs = get_boxes_scores(boxes_obj, scores_obj);
    const double thr = to_double(threshold, "threshold");
    check_threshold01(thr, "threshold");
    const NmsMode mode = parse_mode(mode_obj);
    std::vector<int64_t> keep;
    {
        py::gil_scoped_release nogil;
        keep = nms(bs.boxes.data(), bs.scores.data(), bs.n, static_cast<float>(thr), mode);
    }
    return to_index_array(keep);
}

py::array_t<int64_t> py_batched_nms(py::handle boxes_obj, py::handle scores_obj,
                                    py::handle groups_obj, py::handle threshold,
                                    py::handle mode_obj) {
    auto bs = get_boxes_scores(boxes_obj, scores_obj);
    const double thr = to_double(threshold, "threshold");
    check_threshold01(thr, "threshold");
    const NmsMode mode = parse_mode(mode_obj);
    const std::string ge =
        "int32 or int64 of shape (N,) with N = len(boxes) = " + std::to_string(bs.n);
    py::array g = as_ndarray(groups_obj, "groups", ge);
    std::vector<int64_t> keep;
    if (is_dtype<int32_t>(g)) {
        auto gg = get_array<int32_t>(g, "groups", ge, {static_cast<py::ssize_t>(bs.n)});
        py::gil_scoped_release nogil;
        keep = batched_nms<int32_t>(bs.boxes.data(), bs.scores.data(), gg.data(), bs.n,
                                    static_cast<float>(thr), mode);
    } else if (is_dtype<int64_t>(g)) {
        auto gg = get_array<int64_t>(g, "groups", ge, {static_cast<py::ssize_t>(bs.n)});
        py::gil_scoped_release nogil;
        keep = batched_nms<int64_t>(bs.boxes.data(), bs.scores.data(), gg.data(), bs.n,
                                    static_cast<float>(thr), mode);
    } else {
        throw InvalidDType(mismatch("groups", ge, g));
    }
    return to_index_array(keep);
}

py::list py_pyramid_scales(py::handle height, py::handle width, py::handle min_face_size,
                           py::handle factor, py::handle max_levels, py::handle min_size) {
    const auto s = pyramid_scales(to_int(height, "height"), to_int(width, "width"),
                                  to_double(min_face_size, "min_face_size"),
                                  to_double(factor, "factor"), to_int(max_levels, "max_levels"),
                                  to_int(min_size, "min_size"));
    py::list out;
    for (double v : s) out.append(v);
    return out;
}

py::tuple py_pyramid(py::handle image_obj, py::handle scales_obj, py::handle swap_rb,
                     py::handle mean, py::handle scale) {
    auto img = get_image(image_obj);
    const auto scales = to_double_list(scales_obj, "scales");
    const bool swap = to_bool(swap_rb, "swap_rb");
    const float mu = static_cast<float>(to_finite(mean, "mean"));
    const float sc = static_cast<float>(to_finite(scale, "scale"));
    const int H = static_cast<int>(img.shape(0)), W = static_cast<int>(img.shape(1));
    const PyramidLayout lay = layout_pyramid(H, W, scales);
    py::array_t<float> canvas({py::ssize_t{3}, py::ssize_t{lay.canvas_h},
                               py::ssize_t{lay.canvas_w}});
    py::array_t<int32_t> rects({static_cast<py::ssize_t>(lay.rects.size()), py::ssize_t{4}});
    int32_t* r = rects.mutable_data();
    for (size_t i = 0; i < lay.rects.size(); ++i) {
        r[4 * i] = lay.rects[i].x;
        r[4 * i + 1] = lay.rects[i].y;
        r[4 * i + 2] = lay.rects[i].w;
        r[4 * i + 3] = lay.rects[i].h;
    }
    float* out = canvas.mutable_data();
    const uint8_t* src = img.data();
    {
        py::gil_scoped_release nogil;
        render_pyramid(src, H, W, lay, out, swap, mu, sc);
    }
    return py::make_tuple(canvas, rects);
}

py::tuple py_pnet_candidates(py::handle prob_obj, py::handle reg_obj, py::handle rects_obj,
                             py::handle scales_obj, py::handle threshold, py::handle stride_obj,
                             py::handle cell_obj) {
    auto prob = get_array<float>(prob_obj, "prob", "float32 of shape (Hc', Wc')", {-1, -1});
    const int64_t mh = prob.shape(0), mw = prob.shape(1);
    const std::string re = "float32 of shape (4, Hc', Wc') = (4, " + std::to_string(mh) + ", " +
                           std::to_string(mw) + ")";
    auto reg = get_array<float>(reg_obj, "reg", re,
                                {4, static_cast<py::ssize_t>(mh), static_cast<py::ssize_t>(mw)});
    const std::string rte = "int32 of shape (L, 4)";
    auto rects_arr = get_array<int32_t>(rects_obj, "rects", rte, {-1, 4});
    const auto scales = to_double_list(scales_obj, "scales");
    const double thr = to_finite(threshold, "threshold");
    const int stride = static_cast<int>(to_int_in(stride_obj, "stride", 1, 1024));
    const int cell = static_cast<int>(to_int_in(cell_obj, "cell", 1, 4096));
    const size_t L = static_cast<size_t>(rects_arr.shape(0));
    if (scales.size() != L) {
        throw InvalidArgument("scales must have one entry per rects row: len(rects) = " +
                              std::to_string(L) + ", got len(scales) = " +
                              std::to_string(scales.size()));
    }
    std::vector<LevelRect> rects(L);
    const int32_t* rp = rects_arr.data();
    for (size_t l = 0; l < L; ++l) {
        LevelRect q{rp[4 * l], rp[4 * l + 1], rp[4 * l + 2], rp[4 * l + 3]};
        const std::string who = "rects[" + std::to_string(l) + "] = (" + std::to_string(q.x) +
                                ", " + std::to_string(q.y) + ", " + std::to_string(q.w) + ", " +
                                std::to_string(q.h) + ")";
        if (q.x < 0 || q.y < 0 || q.w < 0 || q.h < 0) {
            throw InvalidArgument(who + " must be non-negative");
        }
        if (q.x % stride != 0 || q.y % stride != 0) {
            throw InvalidArgument(who + ": x and y must be multiples of stride = " +
                                  std::to_string(stride));
        }
        if (!(std::isfinite(scales[l]) && scales[l] > 0.0)) {
            throw InvalidArgument("scales[" + std::to_string(l) + "] must be finite and > 0");
        }
        if (q.w >= cell && q.h >= cell) {
            const int64_t nj = (q.w - cell) / stride + 1, ni = (q.h - cell) / stride + 1;
            if (q.x / stride + nj > mw || q.y / stride + ni > mh) {
                throw InvalidArgument(who + " lies outside the area covered by the prob map " +
                                      "of shape (" + std::to_string(mh) + ", " +
                                      std::to_string(mw) + ") (stride " + std::to_string(stride) +
                                      ", cell " + std::to_string(cell) + ")");
            }
        }
        rects[l] = q;
    }
    std::vector<float> rows;
    std::vector<int32_t> levels;
    {
        py::gil_scoped_release nogil;
        pnet_candidates(prob.data(), reg.data(), mh, mw, rects, scales, static_cast<float>(thr),
                        stride, cell, rows, levels);
    }
    const py::ssize_t k = static_cast<py::ssize_t>(levels.size());
    py::array_t<float> out({k, py::ssize_t{9}});
    py::array_t<int32_t> lv(k);
    if (k) {
        std::memcpy(out.mutable_data(), rows.data(), rows.size() * sizeof(float));
        std::memcpy(lv.mutable_data(), levels.data(), levels.size() * sizeof(int32_t));
    }
    return py::make_tuple(out, lv);
}

carray<float> get_boxes(py::handle obj, const char* name = "boxes") {
    return get_array<float>(obj, name, "float32 of shape (K, 4)", {-1, 4});
}

py::array_t<float> py_calibrate_boxes(py::handle boxes_obj, py::handle reg_obj) {
    auto boxes = get_boxes(boxes_obj);
    const int64_t k = boxes.shape(0);
    auto reg = get_array<float>(reg_obj, "reg",
                                "float32 of shape (K, 4) with K = len(boxes) = " + std::to_string(k),
                                {static_cast<py::ssize_t>(k), 4});
    py::array_t<float> out({static_cast<py::ssize_t>(k), py::ssize_t{4}});
    float* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        check_finite_boxes(boxes.data(), k, "boxes");
        check_finite_boxes(reg.data(), k, "reg");
        calibrate_boxes(boxes.data(), reg.data(), k, o);
    }
    return out;
}

py::array_t<float> py_square_boxes(py::handle boxes_obj) {
    auto boxes = get_boxes(boxes_obj);
    const int64_t k = boxes.shape(0);
    py::array_t<float> out({static_cast<py::ssize_t>(k), py::ssize_t{4}});
    float* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        check_finite_boxes(boxes.data(), k, "boxes");
        square_boxes(boxes.data(), k, o);
    }
    return out;
}

py::array_t<float> py_clip_boxes(py::handle boxes_obj, py::handle width_obj,
                                 py::handle height_obj) {
    auto boxes = get_boxes(boxes_obj);
    const long long w = to_int_in(width_obj, "width", 1, kMaxImageSide);
    const long long h = to_int_in(height_obj, "height", 1, kMaxImageSide);
    const int64_t k = boxes.shape(0);
    py::array_t<float> out({static_cast<py::ssize_t>(k), py::ssize_t{4}});
    float* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        check_finite_boxes(boxes.data(), k, "boxes");
        clip_boxes(boxes.data(), k, static_cast<float>(w), static_cast<float>(h), o);
    }
    return out;
}

void check_output_size(long long elements, const char* what) {
    if (elements > kMaxOutputElements) {
        throw InvalidArgument(std::string(what) + " would have " + std::to_string(elements) +
                              " elements, more than the limit of " +
                              std::to_string(kMaxOutputElements));
    }
}

py::array_t<float> py_crop_resize(py::handle image_obj, py::handle boxes_obj, py::handle size_obj,
                                  py::handle swap_rb, py::handle mean, py::handle scale) {
    auto img = get_image(image_obj);
    auto boxes = get_boxes(boxes_obj);
    const int size = static_cast<int>(to_int_in(size_obj, "size", 1, 4096));
    const bool swap = to_bool(swap_rb, "swap_rb");
    const float mu = static_cast<float>(to_finite(mean, "mean"));
    const float sc = static_cast<float>(to_finite(scale, "scale"));
    const int64_t k = boxes.shape(0);
    check_output_size(static_cast<long long>(k) * 3 * size * size, "crop_resize output");
    const int H = static_cast<int>(img.shape(0)), W = static_cast<int>(img.shape(1));
    py::array_t<float> out({static_cast<py::ssize_t>(k), py::ssize_t{3},
                            static_cast<py::ssize_t>(size), static_cast<py::ssize_t>(size)});
    float* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        crop_resize(img.data(), H, W, boxes.data(), k, size, swap, mu, sc, o);
    }
    return out;
}

// float32 or float64 array with the given dims, as (contiguous array, is_double).
struct RealArray {
    py::array arr;
    bool is_double;
    const void* data() const { return arr.data(); }
};

RealArray get_real(py::handle obj, const char* name, const std::string& expected,
                   std::initializer_list<py::ssize_t> dims) {
    py::array a = as_ndarray(obj, name, expected);
    if (is_dtype<double>(a)) return {get_array<double>(a, name, expected, dims), true};
    if (is_dtype<float>(a)) return {get_array<float>(a, name, expected, dims), false};
    throw InvalidDType(mismatch(name, expected, a));
}

void similarity_dispatch(const RealArray& src, const RealArray& dst, size_t src_offset,
                         int64_t n, double* m, const char* what) {
    if (src.is_double) {
        const double* s = static_cast<const double*>(src.data()) + src_offset;
        if (dst.is_double)
            similarity_transform(s, static_cast<const double*>(dst.data()), n, m, what);
        else
            similarity_transform(s, static_cast<const float*>(dst.data()), n, m, what);
    } else {
        const float* s = static_cast<const float*>(src.data()) + src_offset;
        if (dst.is_double)
            similarity_transform(s, static_cast<const double*>(dst.data()), n, m, what);
        else
            similarity_transform(s, static_cast<const float*>(dst.data()), n, m, what);
    }
}

py::array_t<double> py_similarity_transform(py::handle src_obj, py::handle dst_obj) {
    const std::string e = "float32 or float64 of shape (N, 2) with N >= 2";
    RealArray src = get_real(src_obj, "src", e, {-1, 2});
    const int64_t n = src.arr.shape(0);
    if (n < 2) throw InvalidArgument(mismatch("src", e, src.arr));
    const std::string de = "float32 or float64 of shape (N, 2) with N = len(src) = " +
                           std::to_string(n);
    RealArray dst = get_real(dst_obj, "dst", de, {static_cast<py::ssize_t>(n), 2});
    py::array_t<double> out({py::ssize_t{2}, py::ssize_t{3}});
    double* m = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        similarity_dispatch(src, dst, 0, n, m, "src");
    }
    return out;
}

struct BatchSimilarity {
    RealArray src, dst;
    int64_t k, n;
};

BatchSimilarity get_batch_similarity(py::handle src_obj, py::handle dst_obj, const char* sname,
                                     const char* dname) {
    const std::string e = "float32 or float64 of shape (K, N, 2) with N >= 2";
    RealArray src = get_real(src_obj, sname, e, {-1, -1, 2});
    const int64_t k = src.arr.shape(0), n = src.arr.shape(1);
    if (n < 2) throw InvalidArgument(mismatch(sname, e, src.arr));
    const std::string de = "float32 or float64 of shape (N, 2) with N = " + std::to_string(n) +
                           " (points per face in " + sname + ")";
    RealArray dst = get_real(dst_obj, dname, de, {static_cast<py::ssize_t>(n), 2});
    return {src, dst, k, n};
}

void batch_similarity(const BatchSimilarity& b, double* m, const char* sname) {
    for (int64_t i = 0; i < b.k; ++i) {
        const std::string what = std::string(sname) + "[" + std::to_string(i) + "]";
        similarity_dispatch(b.src, b.dst, static_cast<size_t>(i * b.n * 2), b.n, m + 6 * i,
                            what.c_str());
    }
}

py::array_t<double> py_similarity_transforms(py::handle src_obj, py::handle dst_obj) {
    BatchSimilarity b = get_batch_similarity(src_obj, dst_obj, "src", "dst");
    py::array_t<double> out({static_cast<py::ssize_t>(b.k), py::ssize_t{2}, py::ssize_t{3}});
    double* m = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        batch_similarity(b, m, "src");
    }
    return out;
}

struct WarpOut {
    int oh, ow;
    uint8_t border;
};

WarpOut get_warp_params(int64_t k, py::handle oh_obj, py::handle ow_obj, py::handle bv_obj) {
    const int oh = static_cast<int>(to_int_in(oh_obj, "out_height", 1, 8192));
    const int ow = static_cast<int>(to_int_in(ow_obj, "out_width", 1, 8192));
    const int bv = static_cast<int>(to_int_in(bv_obj, "border_value", 0, 255));
    check_output_size(static_cast<long long>(k) * oh * ow * 3, "warp output");
    return {oh, ow, static_cast<uint8_t>(bv)};
}

py::array_t<uint8_t> py_warp_affine(py::handle image_obj, py::handle mats_obj, py::handle oh_obj,
                                    py::handle ow_obj, py::handle bv_obj) {
    auto img = get_image(image_obj);
    RealArray mats = get_real(mats_obj, "matrices", "float32 or float64 of shape (K, 2, 3)",
                              {-1, 2, 3});
    const int64_t k = mats.arr.shape(0);
    const WarpOut p = get_warp_params(k, oh_obj, ow_obj, bv_obj);
    std::vector<double> m(static_cast<size_t>(6 * k));
    if (k == 0) {
        // Nothing to copy: m.data() and the array's data may be null, and memcpy(nullptr, ..., 0)
        // is undefined behaviour (UBSan "null pointer passed as argument").
    } else if (mats.is_double) {
        std::memcpy(m.data(), mats.data(), m.size() * sizeof(double));
    } else {
        const float* f = static_cast<const float*>(mats.data());
        for (size_t i = 0; i < m.size(); ++i) m[i] = f[i];
    }
    py::array_t<uint8_t> out({static_cast<py::ssize_t>(k), static_cast<py::ssize_t>(p.oh),
                              static_cast<py::ssize_t>(p.ow), py::ssize_t{3}});
    uint8_t* o = out.mutable_data();
    const int H = static_cast<int>(img.shape(0)), W = static_cast<int>(img.shape(1));
    {
        py::gil_scoped_release nogil;
        warp_affine(img.data(), H, W, m.data(), k, p.oh, p.ow, p.border, o);
    }
    return out;
}

py::tuple py_align_faces(py::handle image_obj, py::handle lm_obj, py::handle tpl_obj,
                         py::handle oh_obj, py::handle ow_obj, py::handle bv_obj) {
    auto img = get_image(image_obj);
    BatchSimilarity b = get_batch_similarity(lm_obj, tpl_obj, "landmarks", "template");
    const WarpOut p = get_warp_params(b.k, oh_obj, ow_obj, bv_obj);
    py::array_t<uint8_t> out({static_cast<py::ssize_t>(b.k), static_cast<py::ssize_t>(p.oh),
                              static_cast<py::ssize_t>(p.ow), py::ssize_t{3}});
    py::array_t<double> mats({static_cast<py::ssize_t>(b.k), py::ssize_t{2}, py::ssize_t{3}});
    uint8_t* o = out.mutable_data();
    double* m = mats.mutable_data();
    const int H = static_cast<int>(img.shape(0)), W = static_cast<int>(img.shape(1));
    {
        py::gil_scoped_release nogil;
        batch_similarity(b, m, "landmarks");
        warp_affine(img.data(), H, W, m, b.k, p.oh, p.ow, p.border, o);
    }
    return py::make_tuple(out, mats);
}

}  // namespace

void register_search(py::module_& m);  // search.cpp

PYBIND11_MODULE(_core, m) {
    m.doc() = "edgeface C++ kernels: NMS, MTCNN pyramid and box ops, face alignment.";

    py::module_ errors = py::module_::import("edgeface.errors");
    g_invalid_argument = py::object(errors.attr("InvalidArgumentError")).release().ptr();
    g_invalid_dtype = py::object(errors.attr("InvalidDTypeError")).release().ptr();
    g_image_error = py::object(errors.attr("ImageError")).release().ptr();
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const InvalidArgument& e) {
            PyErr_SetString(g_invalid_argument, e.what());
        } catch (const InvalidDType& e) {
            PyErr_SetString(g_invalid_dtype, e.what());
        } catch (const ImageError& e) {
            PyErr_SetString(g_image_error, e.what());
        }
    });

    m.def("nms", &py_nms, py::arg("boxes"), py::arg("scores"), py::arg("threshold"),
          py::arg("mode") = "iou", "Greedy NMS; returns kept indices (int64) by descending score.");
    m.def("batched_nms", &py_batched_nms, py::arg("boxes"), py::arg("scores"), py::arg("groups"),
          py::arg("threshold"), py::arg("mode") = "iou", "Greedy NMS within each group id.");
    m.def("pyramid_scales", &py_pyramid_scales, py::arg("height"), py::arg("width"),
          py::arg("min_face_size") = 20.0, py::arg("factor") = 0.709, py::arg("max_levels") = 32,
          py::arg("min_size") = 12, "MTCNN pyramid scales.");
    m.def("pyramid", &py_pyramid, py::arg("image"), py::arg("scales"), py::arg("swap_rb") = true,
          py::arg("mean") = 127.5, py::arg("scale") = 0.0078125,
          "All pyramid levels packed into one normalized (3, Hc, Wc) canvas; returns (canvas, rects).");
    m.def("pnet_candidates", &py_pnet_candidates, py::arg("prob"), py::arg("reg"), py::arg("rects"),
          py::arg("scales"), py::arg("threshold"), py::arg("stride") = 2, py::arg("cell") = 12,
          "P-Net output cells -> candidate boxes in image coordinates; returns (rows, levels).");
    m.def("calibrate_boxes", &py_calibrate_boxes, py::arg("boxes"), py::arg("reg"),
          "MTCNN bounding-box regression (bbreg).");
    m.def("square_boxes", &py_square_boxes, py::arg("boxes"), "Squares boxes around their centre.");
    m.def("clip_boxes", &py_clip_boxes, py::arg("boxes"), py::arg("width"), py::arg("height"),
          "Clips boxes to [0, width] x [0, height].");
    m.def("crop_resize", &py_crop_resize, py::arg("image"), py::arg("boxes"), py::arg("size"),
          py::arg("swap_rb") = true, py::arg("mean") = 127.5, py::arg("scale") = 0.0078125,
          "Batched bilinear crop-and-resize with zero padding -> (K, 3, size, size) float32.");
    m.def("similarity_transform", &py_similarity_transform, py::arg("src"), py::arg("dst"),
          "Umeyama least-squares similarity src -> dst as a (2, 3) float64 matrix.");
    m.def("similarity_transforms", &py_similarity_transforms, py::arg("src"), py::arg("dst"),
          "Batched similarity_transform: (K, N, 2) -> (K, 2, 3).");
    m.def("warp_affine", &py_warp_affine, py::arg("image"), py::arg("matrices"),
          py::arg("out_height"), py::arg("out_width"), py::arg("border_value") = 0,
          "Bilinear affine warps (source -> destination matrices) -> (K, out_h, out_w, 3) uint8.");
    m.def("align_faces", &py_align_faces, py::arg("image"), py::arg("landmarks"),
          py::arg("template"), py::arg("out_height"), py::arg("out_width"),
          py::arg("border_value") = 0,
          "Similarity estimate + warp per face; returns (crops, matrices).");
    register_search(m);
}
