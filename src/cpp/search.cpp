// Gallery search over int8 templates: scores[q, i] = scale[i] * dot(code[i], probe[q]).
// numpy has no fast int8 (or float16) matrix product, so the compact store needs this kernel to
// run near its memory-bandwidth bound: each code row is read once for a block of probes, widened
// to float in registers, and rows are split across threads. Registered by register_search(),
// called from bindings.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "array_checks.hpp"
#include "errors.hpp"

namespace py = pybind11;
using namespace edgeface;
using namespace edgeface::checks;

namespace {

// Rows [begin, end) against every probe. Probes arrive as int16 codes with one scale each, so
// the inner loop is an exact int8 x int16 -> int32 multiply-add, which compilers vectorise on
// the baseline ISA (SSE2 pmaddwd, NEON smlal) without -ffast-math; |sum| <= D * 127 * 32767 fits.
#if defined(__x86_64__) && defined(__GNUC__)
// x86-64's baseline (SSE2) has no int8 widening loads; an AVX2 clone is picked at load time
// when the CPU has it (GCC/Clang function multi-versioning), the baseline one otherwise.
__attribute__((target_clones("avx2", "default")))
#endif
void score_rows(const int8_t* codes, const float* scales, const int16_t* probes,
                const float* probe_scales, float* out, long long n, long long q, long long d,
                long long begin, long long end) {
    for (long long i = begin; i < end; ++i) {
        const int8_t* row = codes + i * d;
        for (long long p = 0; p < q; ++p) {
            const int16_t* probe = probes + p * d;
            int32_t acc = 0;
            for (long long k = 0; k < d; ++k) acc += static_cast<int32_t>(row[k]) * probe[k];
            out[p * n + i] = static_cast<float>(acc) * scales[i] * probe_scales[p];
        }
    }
}

// Probes to int16 codes with a per-probe scale (relative error <= 2**-15 of the largest value).
void quantize_probes(const float* probes, long long q, long long d, std::vector<int16_t>& codes,
                     std::vector<float>& scales) {
    codes.resize(static_cast<size_t>(q * d));
    scales.resize(static_cast<size_t>(q));
    for (long long p = 0; p < q; ++p) {
        float peak = 0.f;
        for (long long k = 0; k < d; ++k) peak = std::max(peak, std::abs(probes[p * d + k]));
        const float scale = peak > 0.f ? peak / 32767.f : 1.f;
        scales[p] = scale;
        for (long long k = 0; k < d; ++k) {
            codes[p * d + k] = static_cast<int16_t>(std::lround(probes[p * d + k] / scale));
        }
    }
}

py::array_t<float> py_int8_scores(py::handle codes_obj, py::handle scales_obj, py::handle probes_obj,
                                  py::handle threads_obj) {
    auto codes = get_array<int8_t>(codes_obj, "codes", "int8 of shape (N, D)", {-1, -1});
    const long long n = codes.shape(0), d = codes.shape(1);
    const std::string dn = std::to_string(d);
    auto scales = get_array<float>(scales_obj, "scales", "float32 of shape (N,)", {n});
    auto probes = get_array<float>(probes_obj, "probes", "float32 of shape (Q, " + dn + ")", {-1, d});
    const long long q = probes.shape(0);
    {
        const float* pp = probes.data();
        for (long long k = 0; k < q * d; ++k) {
            if (!std::isfinite(pp[k])) throw InvalidArgument("probes contain NaN or infinity");
        }
    }
    if (q * n > kMaxOutputElements) {
        throw InvalidArgument("probes x rows = " + std::to_string(q * n) +
                              " scores exceeds 2**28; search fewer probes at a time");
    }
    long long threads = to_int_in(threads_obj, "threads", 0, 256);
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    threads = std::max(1LL, std::min(threads, n / 32768));  // small galleries: one thread
    py::array_t<float> out({q, n});
    const int8_t* c = codes.data();
    const float* s = scales.data();
    float* o = out.mutable_data();
    std::vector<int16_t> pc;
    std::vector<float> ps;
    {
        py::gil_scoped_release nogil;
        quantize_probes(probes.data(), q, d, pc, ps);
        const int16_t* p = pc.data();
        const float* pscale = ps.data();
        std::vector<std::thread> pool;
        const long long step = (n + threads - 1) / threads;
        for (long long t = 1; t < threads; ++t) {
            const long long b = t * step, e = std::min(n, b + step);
            if (b < e) pool.emplace_back(score_rows, c, s, p, pscale, o, n, q, d, b, e);
        }
        score_rows(c, s, p, pscale, o, n, q, d, 0, std::min(n, step));
        for (auto& th : pool) th.join();
    }
    return out;
}

}  // namespace

void register_search(py::module_& m) {
    m.def("int8_scores", &py_int8_scores, py::arg("codes"), py::arg("scales"), py::arg("probes"),
          py::arg("threads") = 0,
          "Gallery search over int8 templates: (Q, N) float32 scores = scales * (probes @ codes.T); "
          "threads=0 uses every core.");
}
