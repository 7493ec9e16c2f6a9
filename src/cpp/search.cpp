// Gallery search over int8 templates: scores[q, i] = scale[i] * dot(code[i], probe[q]).
// numpy has no fast int8 (or float16) matrix product, so the compact store needs this kernel to
// run near its memory-bandwidth bound: rows are scored in blocks of 8 against every probe (the
// block stays in L1 while the probes pass over it), and rows are split across threads.
// int8_top fuses the scan with a per-probe top-k, so no (Q, N) score matrix is written.
// Registered by register_search(), called from bindings.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EDGEFACE_SEARCH_AVX2 1
#endif

#include "array_checks.hpp"
#include "errors.hpp"

namespace py = pybind11;
using namespace edgeface;
using namespace edgeface::checks;

namespace {

constexpr long long kBlock = 8;        // rows per block: one AVX2 vector of 8 int32 sums
constexpr long long kMaxTopK = 4096;   // int8_top keeps up to 2k candidates per probe and thread

// Probes as int16 codes with one scale each, so that every dot product is an exact
// int8 x int16 -> int32 multiply-add (|sum| <= D * 128 * 32767 fits for D <= 512): any
// summation order gives the same integer, hence bit-identical scores on every path.
struct Probes {
    const int16_t* codes;
    const float* scales;
    long long q, d;
};

// Scores of `count` (<= kBlock) rows against every probe into dst[p * stride + r]. The portable
// path for other CPUs and for the rows left over by full blocks; compilers vectorise its inner
// loop on the baseline ISA (SSE2 pmaddwd, NEON smlal) without -ffast-math.
void block_portable(const int8_t* rows, long long count, const float* scales, const Probes& pr,
                    float* dst, long long stride) {
    const long long d = pr.d;
    for (long long r = 0; r < count; ++r) {
        const int8_t* row = rows + r * d;
        for (long long p = 0; p < pr.q; ++p) {
            const int16_t* probe = pr.codes + p * d;
            int32_t acc = 0;
            for (long long k = 0; k < d; ++k) acc += static_cast<int32_t>(row[k]) * probe[k];
            dst[p * stride + r] = static_cast<float>(acc) * scales[r] * pr.scales[p];
        }
    }
}

#ifdef EDGEFACE_SEARCH_AVX2
// Eight int32 vectors -> one vector of their eight horizontal sums (a hadd tree: 6 hadds, one
// cross-lane add, instead of a full reduction per row).
__attribute__((target("avx2"))) inline __m256i hsum8(const __m256i a[8]) {
    const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
    // h0 = [sums of rows 0-3 over lanes 0-3 | over lanes 4-7], h1 the same for rows 4-7
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20),
                            _mm256_permute2x128_si256(h0, h1, 0x31));
}

// The end of a full block for one probe: adds the codes [done, d) the vector loop left (D not a
// multiple of its width) to the eight row sums, then stores (float(sum) * row scale) * probe scale,
// the portable path's order: no FMA, same rounding.
__attribute__((target("avx2"))) inline void finish_block(__m256i sums, const int8_t* rows, const int16_t* probe,
                                                          long long done, long long d, __m256 row_scales,
                                                          float probe_scale, float* dst) {
    if (done < d) {
        alignas(32) int32_t tail[kBlock];
        for (long long r = 0; r < kBlock; ++r) {
            int32_t t = 0;
            for (long long k = done; k < d; ++k) t += static_cast<int32_t>(rows[r * d + k]) * probe[k];
            tail[r] = t;
        }
        sums = _mm256_add_epi32(sums, _mm256_load_si256(reinterpret_cast<const __m256i*>(tail)));
    }
    const __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(sums), row_scales);
    _mm256_storeu_ps(dst, _mm256_mul_ps(s, _mm256_set1_ps(probe_scale)));
}

// A full block of kBlock rows (x86-64 with AVX2): 16 codes at a time widened to int16
// (vpmovsxbw) and multiplied-added in pairs (vpmaddwd) into one int32 accumulator per row.
__attribute__((target("avx2"))) void block_avx2(const int8_t* rows, long long, const float* scales,
                                                const Probes& pr, float* dst, long long stride) {
    const long long d = pr.d, d16 = d & ~15LL;
    const __m256 row_scales = _mm256_loadu_ps(scales);
    for (long long p = 0; p < pr.q; ++p) {
        const int16_t* probe = pr.codes + p * d;
        __m256i acc[kBlock];
        for (auto& a : acc) a = _mm256_setzero_si256();
        for (long long k = 0; k < d16; k += 16) {
            const __m256i pv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(probe + k));
            for (long long r = 0; r < kBlock; ++r) {
                const __m128i codes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + r * d + k));
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(_mm256_cvtepi8_epi16(codes), pv));
            }
        }
        finish_block(hsum8(acc), rows, probe, d16, d, row_scales, pr.scales[p], dst + p * stride);
    }
}

// The same block with AVX-512 VNNI (x86-64 server and recent desktop CPUs): 32 codes at a time, and
// vpdpwssd does the multiply-add of int16 pairs and the accumulation in one instruction (exact, no
// saturation), a third of AVX2's instructions per multiply: 16 probes at 1M rows took 46.7 ms with
// the AVX2 block, twice the bandwidth bound (bench/gallery_scale.py).
__attribute__((target("avx2,avx512f,avx512bw,avx512vnni"))) void block_avx512vnni(
        const int8_t* rows, long long, const float* scales, const Probes& pr, float* dst, long long stride) {
    const long long d = pr.d, d32 = d & ~31LL;
    const __m256 row_scales = _mm256_loadu_ps(scales);
    for (long long p = 0; p < pr.q; ++p) {
        const int16_t* probe = pr.codes + p * d;
        __m512i acc[kBlock];
        for (auto& a : acc) a = _mm512_setzero_si512();
        for (long long k = 0; k < d32; k += 32) {
            const __m512i pv = _mm512_loadu_si512(probe + k);
            for (long long r = 0; r < kBlock; ++r) {
                const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows + r * d + k));
                acc[r] = _mm512_dpwssd_epi32(acc[r], _mm512_cvtepi8_epi16(codes), pv);
            }
        }
        __m256i halves[kBlock];
        for (long long r = 0; r < kBlock; ++r) {
            halves[r] = _mm256_add_epi32(_mm512_castsi512_si256(acc[r]), _mm512_extracti64x4_epi64(acc[r], 1));
        }
        finish_block(hsum8(halves), rows, probe, d32, d, row_scales, pr.scales[p], dst + p * stride);
    }
}
#endif

using BlockFn = void (*)(const int8_t*, long long, const float*, const Probes&, float*, long long);

// The kernel for full blocks, picked once for this CPU.
BlockFn full_block() {
#ifdef EDGEFACE_SEARCH_AVX2
    static const BlockFn fn = [] {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")) return block_avx512vnni;
        return __builtin_cpu_supports("avx2") ? block_avx2 : block_portable;
    }();
    return fn;
#else
    return block_portable;
#endif
}

// Rows [begin, end) against every probe into out (Q, n).
void score_rows(const int8_t* codes, const float* scales, const Probes& pr, float* out, long long n,
                long long begin, long long end) {
    const BlockFn full = full_block();
    long long i = begin;
    for (; i + kBlock <= end; i += kBlock) full(codes + i * pr.d, kBlock, scales + i, pr, out + i, n);
    if (i < end) block_portable(codes + i * pr.d, end - i, scales + i, pr, out + i, n);
}

struct Candidate {
    float score;
    long long row;
};

// Best first, ties by lower row: a total order (rows are distinct, scores are never NaN).
bool better(const Candidate& a, const Candidate& b) {
    return a.score > b.score || (a.score == b.score && a.row < b.row);
}

// The m best rows offered so far, in a buffer of up to 2m: an offer is O(1) amortised (a full
// buffer is cut to its m best by nth_element), and after the first cut only rows above the m-th
// best score get in. Rows are offered in increasing order, so a tie loses to the kept row.
class Shortlist {
  public:
    explicit Shortlist(long long m) : m_(m) { kept_.reserve(static_cast<size_t>(2 * m)); }
    // Offers rows first, first + 1, ... with these scores.
    void offer(const float* scores, long long count, long long first) {
        bool any = !cut_;
        for (long long r = 0; r < count; ++r) any |= scores[r] > floor_;  // the usual case: none
        if (!any) return;
        for (long long r = 0; r < count; ++r) offer(scores[r], first + r);
    }
    void offer(float score, long long row) {
        if (cut_ && !(score > floor_)) return;
        kept_.push_back({score, row});
        if (static_cast<long long>(kept_.size()) == 2 * m_) {
            std::nth_element(kept_.begin(), kept_.begin() + (m_ - 1), kept_.end(), better);
            kept_.resize(static_cast<size_t>(m_));
            floor_ = kept_.back().score;
            cut_ = true;
        }
    }
    const std::vector<Candidate>& kept() const { return kept_; }

  private:
    long long m_;
    std::vector<Candidate> kept_;
    float floor_ = 0.f;
    bool cut_ = false;
};

// Rows [begin, end) offered to one shortlist per probe; returns false at a non-finite scale.
bool top_rows(const int8_t* codes, const float* scales, const Probes& pr, long long begin,
              long long end, std::vector<Shortlist>& lists) {
    const BlockFn full = full_block();
    std::vector<float> block(static_cast<size_t>(pr.q * kBlock));
    for (long long i = begin; i < end; i += kBlock) {
        const long long count = std::min(kBlock, end - i);
        bool finite = true;
        for (long long r = 0; r < count; ++r) finite &= std::abs(scales[i + r]) <= std::numeric_limits<float>::max();
        if (!finite) return false;  // NaN scores would break the order
        (count == kBlock ? full : block_portable)(codes + i * pr.d, count, scales + i, pr, block.data(), kBlock);
        for (long long p = 0; p < pr.q; ++p) {
            lists[p].offer(block.data() + p * kBlock, count, i);
        }
    }
    return true;
}

// Probes to int16 codes with a per-probe scale (relative error <= 2**-15 of the largest value).
// The scale is at least the smallest float, so that a (subnormal) tiny probe cannot divide by 0.
void quantize_probes(const float* probes, long long q, long long d, std::vector<int16_t>& codes,
                     std::vector<float>& scales) {
    codes.resize(static_cast<size_t>(q * d));
    scales.resize(static_cast<size_t>(q));
    for (long long p = 0; p < q; ++p) {
        float peak = 0.f;
        for (long long k = 0; k < d; ++k) peak = std::max(peak, std::abs(probes[p * d + k]));
        const float scale =
            peak > 0.f ? std::max(peak / 32767.f, std::numeric_limits<float>::denorm_min()) : 1.f;
        scales[p] = scale;
        for (long long k = 0; k < d; ++k) {
            codes[p * d + k] = static_cast<int16_t>(std::lround(probes[p * d + k] / scale));
        }
    }
}

// Largest D whose int8 x int16 sums fit in int32: D * 128 * 32767 < 2**31.
constexpr long long kMaxDim = 512;

// The inputs both functions share, validated (with the GIL held).
struct Search {
    carray<int8_t> codes;
    carray<float> scales, probes;
    long long n, d, q, threads;
};

Search parse(py::handle codes_obj, py::handle scales_obj, py::handle probes_obj, py::handle threads_obj) {
    auto codes = get_array<int8_t>(codes_obj, "codes", "int8 of shape (N, D)", {-1, -1});
    const long long n = codes.shape(0), d = codes.shape(1);
    if (d > kMaxDim) {  // beyond it the int32 dot products could overflow
        throw InvalidArgument("codes have " + std::to_string(d) + " dimensions; the int8 kernel takes at most " +
                              std::to_string(kMaxDim) + " (use the float32 store)");
    }
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
    long long threads = to_int_in(threads_obj, "threads", 0, 256);
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    threads = std::max(1LL, std::min(threads, n / 32768));  // small galleries: one thread
    return {std::move(codes), std::move(scales), std::move(probes), n, d, q, threads};
}

// fn(begin, end) on `threads` contiguous row ranges (whole blocks but the last), the first on
// this thread.
template <typename Fn>
void split_rows(long long n, long long threads, Fn fn) {
    const long long step = ((n + threads - 1) / threads + kBlock - 1) / kBlock * kBlock;
    std::vector<std::thread> pool;
    for (long long t = 1; t < threads; ++t) {
        const long long b = t * step, e = std::min(n, b + step);
        if (b < e) pool.emplace_back(fn, t, b, e);
    }
    fn(0, 0, std::min(n, step));
    for (auto& th : pool) th.join();
}

py::array_t<float> py_int8_scores(py::handle codes_obj, py::handle scales_obj, py::handle probes_obj,
                                  py::handle threads_obj) {
    Search s = parse(codes_obj, scales_obj, probes_obj, threads_obj);
    if (s.q * s.n > kMaxOutputElements) {
        throw InvalidArgument("probes x rows = " + std::to_string(s.q * s.n) +
                              " scores exceeds 2**28; search fewer probes at a time");
    }
    py::array_t<float> out({s.q, s.n});
    float* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        std::vector<int16_t> pc;
        std::vector<float> ps;
        quantize_probes(s.probes.data(), s.q, s.d, pc, ps);
        const Probes pr{pc.data(), ps.data(), s.q, s.d};
        split_rows(s.n, s.threads, [&](long long, long long b, long long e) {
            score_rows(s.codes.data(), s.scales.data(), pr, o, s.n, b, e);
        });
    }
    return out;
}

py::tuple py_int8_top(py::handle codes_obj, py::handle scales_obj, py::handle probes_obj, py::handle k_obj,
                      py::handle threads_obj) {
    Search s = parse(codes_obj, scales_obj, probes_obj, threads_obj);
    const long long m = std::min(to_int_in(k_obj, "k", 1, kMaxTopK), s.n);
    py::array_t<long long> rows({s.q, m});
    py::array_t<float> scores({s.q, m});
    long long* ro = rows.mutable_data();
    float* so = scores.mutable_data();
    bool finite = true;
    if (m > 0) {
        py::gil_scoped_release nogil;
        std::vector<int16_t> pc;
        std::vector<float> ps;
        quantize_probes(s.probes.data(), s.q, s.d, pc, ps);
        const Probes pr{pc.data(), ps.data(), s.q, s.d};
        std::vector<std::vector<Shortlist>> lists(static_cast<size_t>(s.threads),
                                                  std::vector<Shortlist>(static_cast<size_t>(s.q), Shortlist(m)));
        std::vector<char> ok(static_cast<size_t>(s.threads), 1);
        split_rows(s.n, s.threads, [&](long long t, long long b, long long e) {
            ok[t] = top_rows(s.codes.data(), s.scales.data(), pr, b, e, lists[t]);
        });
        finite = std::all_of(ok.begin(), ok.end(), [](char v) { return v != 0; });
        for (long long p = 0; finite && p < s.q; ++p) {  // merge: the m best of every thread's m best
            std::vector<Candidate> all;
            for (const auto& per_thread : lists) {
                all.insert(all.end(), per_thread[p].kept().begin(), per_thread[p].kept().end());
            }
            std::partial_sort(all.begin(), all.begin() + m, all.end(), better);
            for (long long j = 0; j < m; ++j) {
                ro[p * m + j] = all[j].row;
                so[p * m + j] = all[j].score;
            }
        }
    }
    if (!finite) throw InvalidArgument("scales contain NaN or infinity");
    return py::make_tuple(rows, scores);
}

}  // namespace

void register_search(py::module_& m) {
    m.def("int8_scores", &py_int8_scores, py::arg("codes"), py::arg("scales"), py::arg("probes"),
          py::arg("threads") = 0,
          "Gallery search over int8 templates: (Q, N) float32 scores = scales * (probes @ codes.T); "
          "threads=0 uses every core.");
    m.def("int8_top", &py_int8_top, py::arg("codes"), py::arg("scales"), py::arg("probes"), py::arg("k"),
          py::arg("threads") = 0,
          "The k (<= 4096) best rows per probe of int8_scores(codes, scales, probes), without the (Q, N) "
          "matrix: (rows int64 (Q, k'), scores float32 (Q, k')), k' = min(k, N), best first, ties by "
          "lower row. scales must be finite; threads=0 uses every core.");
}
