#include "align.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <cstdint>
#include <string>
#include <vector>

#include "errors.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

namespace edgeface {

// Umeyama (1991) specialised to 2-D. With centred points p (src) and q (dst), the optimal
// rotation-with-scale is [[a, -b], [b, a]] with a = sum(p.q) / sum|p|^2 and
// b = sum(p x q) / sum|p|^2. This is exactly the SVD solution with the reflection guard
// (d = diag(1, sign det)): the maximiser of trace(R^T Sigma) over SO(2) is unique unless
// Sigma = 0, and a 2-D rotation-scale is fully parameterised by (a, b).
template <typename S, typename D>
void similarity_transform(const S* src, const D* dst, int64_t n, double* m, const char* what) {
    double msx = 0, msy = 0, mdx = 0, mdy = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double sx = src[2 * i], sy = src[2 * i + 1];
        const double dx = dst[2 * i], dy = dst[2 * i + 1];
        if (!(std::isfinite(sx) && std::isfinite(sy))) {
            throw InvalidArgument(std::string(what) + " contains NaN or inf");
        }
        if (!(std::isfinite(dx) && std::isfinite(dy))) {
            throw InvalidArgument("dst contains NaN or inf");
        }
        msx += sx; msy += sy; mdx += dx; mdy += dy;
    }
    const double inv = 1.0 / static_cast<double>(n);
    msx *= inv; msy *= inv; mdx *= inv; mdy *= inv;
    double var = 0, dot = 0, crs = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double px = src[2 * i] - msx, py = src[2 * i + 1] - msy;
        const double qx = dst[2 * i] - mdx, qy = dst[2 * i + 1] - mdy;
        var += px * px + py * py;
        dot += px * qx + py * qy;
        crs += px * qy - py * qx;
    }
    const double mag = msx * msx + msy * msy;
    if (!(var > 1e-12 * std::max(1.0, mag))) {
        throw InvalidArgument(std::string(what) +
                              " is degenerate: all points (nearly) identical, zero variance");
    }
    const double a = dot / var, b = crs / var;
    if (!(a * a + b * b > 1e-24)) {
        throw InvalidArgument("dst is degenerate: the similarity transform has scale 0");
    }
    m[0] = a;  m[1] = -b; m[2] = mdx - (a * msx - b * msy);
    m[3] = b;  m[4] = a;  m[5] = mdy - (b * msx + a * msy);
}

template void similarity_transform<float, float>(const float*, const float*, int64_t, double*,
                                                 const char*);
template void similarity_transform<float, double>(const float*, const double*, int64_t, double*,
                                                  const char*);
template void similarity_transform<double, float>(const double*, const float*, int64_t, double*,
                                                  const char*);
template void similarity_transform<double, double>(const double*, const double*, int64_t,
                                                   double*, const char*);

namespace {
// Sample positions are quantised to 1/2048 px (11 bits), as floor(X * 2048 + 0.5) of the exact
// double position. The 4 bilinear weights are the products of the two 11-bit fractions rounded
// to 14 bits (they sum to exactly 2^14), so that a tap times its weight fits a signed 16-bit
// multiply-add (SSE2 pmaddwd / NEON vmlal) and the 4-tap sum fits an int. The difference to
// exact float bilinear is < 0.2 grey level before rounding.
constexpr int kFracBits = 11;
constexpr int kFracOne = 1 << kFracBits;
constexpr int kFracMask = kFracOne - 1;
constexpr int kWBits = 14;
constexpr int kWOne = 1 << kWBits;
constexpr int kWRound = 1 << (kWBits - 1);
constexpr int kWShift = 2 * kFracBits - kWBits;  // 22-bit products -> 14-bit weights
constexpr double kPrefetchRows = 2.0;  // measured: 1..4 rows ahead all help, 2 is best

struct Weights {
    int w00, w01, w10, w11;
};

// 14-bit weights from the 11-bit fractions ax, ay. w00 absorbs the rounding so that the sum
// is exactly 2^14; it can then be -1 (when the exact w00 is < 1.5 / 2^14), which is harmless:
// the result stays within [-0.02, 255.02] before rounding.
inline Weights bilinear_weights(int ax, int ay) {
    constexpr int r = 1 << (kWShift - 1);
    Weights w;
    w.w11 = (ax * ay + r) >> kWShift;
    w.w01 = (ax * (kFracOne - ay) + r) >> kWShift;
    w.w10 = ((kFracOne - ax) * ay + r) >> kWShift;
    w.w00 = kWOne - w.w11 - w.w01 - w.w10;
    return w;
}

// Any sample position (border pixels): taps outside the image read `border`.
inline void sample_border(const uint8_t* image, int height, int width, size_t stride, int qx,
                          int qy, int bv, uint8_t* op) {
    const int sx = qx >> kFracBits, sy = qy >> kFracBits;
    if (sx + 1 < 0 || sy + 1 < 0 || sx >= width || sy >= height) {
        op[0] = op[1] = op[2] = static_cast<uint8_t>(bv);
        return;
    }
    const Weights w = bilinear_weights(qx & kFracMask, qy & kFracMask);
    const bool vx0 = sx >= 0 && sx < width, vx1 = sx + 1 >= 0 && sx + 1 < width;
    const bool vy0 = sy >= 0 && sy < height, vy1 = sy + 1 >= 0 && sy + 1 < height;
    const uint8_t* r0 = image + static_cast<ptrdiff_t>(sy) * static_cast<ptrdiff_t>(stride);
    const uint8_t* r1 = r0 + stride;
    for (int c = 0; c < 3; ++c) {
        const int t00 = (vy0 && vx0) ? r0[sx * 3 + c] : bv;
        const int t01 = (vy0 && vx1) ? r0[(sx + 1) * 3 + c] : bv;
        const int t10 = (vy1 && vx0) ? r1[sx * 3 + c] : bv;
        const int t11 = (vy1 && vx1) ? r1[(sx + 1) * 3 + c] : bv;
        const int v = t00 * w.w00 + t01 * w.w01 + t10 * w.w10 + t11 * w.w11;
        op[c] = static_cast<uint8_t>((v + kWRound) >> kWBits);
    }
}

// Interior pixels [x0, x1) of one output row: every tap is inside the image and the 8 bytes
// read from each of the two source rows at the tap position too (sx <= width - 3,
// sy <= height - 2). Positions are clamped once more so that a violated precondition can
// only produce a wrong value, never an out-of-bounds read.
inline void sample_interior(const uint8_t* image, int height, int width, size_t stride,
                            const int* tx, const int* ty, int x0, int x1, int* ofs, int* wa,
                            int* wb, ptrdiff_t prefetch, uint8_t* orow) {
    const int sx_max = width - 3, sy_max = height - 2;
#if defined(__SSE2__)
    if (x0 >= x1) return;
    // Pass 1b: byte offset of tap (0, 0) and the 4 weights as two packed 16-bit pairs
    // (w00, w10) and (w01, w11) per pixel, 8 pixels at a time in 16-bit lanes (the scalar
    // tail computes the same values). Offsets fit an int: H * W <= 2^28.
    const int stride32 = static_cast<int>(stride);
    int x = x0;
    {
        const __m128i zero = _mm_setzero_si128();
        const __m128i mask = _mm_set1_epi32(kFracMask);
        const __m128i one = _mm_set1_epi16(kFracOne), wone = _mm_set1_epi16(kWOne);
        const __m128i sxm = _mm_set1_epi16(static_cast<short>(sx_max));
        const __m128i sym = _mm_set1_epi16(static_cast<short>(sy_max));
        const __m128i w16 = _mm_set1_epi16(static_cast<short>(width));  // <= 32768 (unsigned)
        // (u * v + 128) >> 8 for u, v <= 2048 (product < 2^22) from the 16-bit halves:
        // (lo + 128) >> 8 == ((lo >> 7) + 1) >> 1 == avg(lo >> 7, 0).
        auto mul22 = [&](__m128i u, __m128i v) {
            const __m128i lo = _mm_mullo_epi16(u, v), hi = _mm_mulhi_epu16(u, v);
            return _mm_add_epi16(_mm_slli_epi16(hi, 8), _mm_avg_epu16(_mm_srli_epi16(lo, 7), zero));
        };
        for (; x + 8 <= x1; x += 8) {
            const __m128i qx0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tx + x));
            const __m128i qx1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tx + x + 4));
            const __m128i qy0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ty + x));
            const __m128i qy1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ty + x + 4));
            __m128i sx = _mm_packs_epi32(_mm_srai_epi32(qx0, kFracBits), _mm_srai_epi32(qx1, kFracBits));
            __m128i sy = _mm_packs_epi32(_mm_srai_epi32(qy0, kFracBits), _mm_srai_epi32(qy1, kFracBits));
            sx = _mm_min_epi16(_mm_max_epi16(sx, zero), sxm);
            sy = _mm_min_epi16(_mm_max_epi16(sy, zero), sym);
            const __m128i ax = _mm_packs_epi32(_mm_and_si128(qx0, mask), _mm_and_si128(qx1, mask));
            const __m128i ay = _mm_packs_epi32(_mm_and_si128(qy0, mask), _mm_and_si128(qy1, mask));
            const __m128i bx = _mm_sub_epi16(one, ax), by = _mm_sub_epi16(one, ay);
            const __m128i w11 = mul22(ax, ay), w01 = mul22(ax, by), w10 = mul22(bx, ay);
            const __m128i w00 = _mm_sub_epi16(_mm_sub_epi16(wone, w11), _mm_add_epi16(w01, w10));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(wa + x), _mm_unpacklo_epi16(w00, w10));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(wa + x + 4), _mm_unpackhi_epi16(w00, w10));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(wb + x), _mm_unpacklo_epi16(w01, w11));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(wb + x + 4), _mm_unpackhi_epi16(w01, w11));
            const __m128i lo = _mm_mullo_epi16(sy, w16), hi = _mm_mulhi_epu16(sy, w16);
            __m128i o0 = _mm_add_epi32(_mm_unpacklo_epi16(lo, hi), _mm_unpacklo_epi16(sx, zero));
            __m128i o1 = _mm_add_epi32(_mm_unpackhi_epi16(lo, hi), _mm_unpackhi_epi16(sx, zero));
            o0 = _mm_add_epi32(o0, _mm_add_epi32(o0, o0));
            o1 = _mm_add_epi32(o1, _mm_add_epi32(o1, o1));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(ofs + x), o0);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(ofs + x + 4), o1);
        }
    }
    for (; x < x1; ++x) {
        const int qx = tx[x], qy = ty[x];
        const int sx = std::min(std::max(qx >> kFracBits, 0), sx_max);
        const int sy = std::min(std::max(qy >> kFracBits, 0), sy_max);
        const Weights w = bilinear_weights(qx & kFracMask, qy & kFracMask);
        ofs[x] = sy * stride32 + sx * 3;
        wa[x] = static_cast<int>((static_cast<unsigned>(w.w00) & 0xFFFFu) |
                                 (static_cast<unsigned>(w.w10) << 16));
        wb[x] = static_cast<int>(static_cast<unsigned>(w.w01) |
                                 (static_cast<unsigned>(w.w11) << 16));
    }
    const __m128i zero = _mm_setzero_si128();
    const __m128i round = _mm_set1_epi32(kWRound);
    // One pixel: the 6 bytes (tap x, tap x+1) of each source row, loaded as 8, interleaved
    // row 0 / row 1 and spread to 16-bit pairs (t0x[c], t1x[c]) so that two pmaddwd give each
    // channel's 4-tap sum. Returns 3 channels (+1 garbage byte) in the low 32 bits.
    auto pixel = [&](int x) -> int {
        const uint8_t* p0 = image + ofs[x];
        // The same pixel of a later output row: its source rows are not in cache yet when
        // the face is minified (hardware prefetchers do not follow this diagonal walk).
        const char* pf = reinterpret_cast<const char*>(
            reinterpret_cast<uintptr_t>(p0) + static_cast<uintptr_t>(prefetch));
        _mm_prefetch(pf, _MM_HINT_T0);
        _mm_prefetch(pf + stride, _MM_HINT_T0);
        const __m128i r = _mm_unpacklo_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p0)),
                                            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p0 + stride)));
        const __m128i t0 = _mm_unpacklo_epi8(r, zero);                      // t00 t10 per c
        const __m128i t1 = _mm_unpacklo_epi8(_mm_srli_si128(r, 6), zero);   // t01 t11 per c
        const __m128i w0 = _mm_shuffle_epi32(_mm_cvtsi32_si128(wa[x]), 0);  // w00 w10 ...
        const __m128i w1 = _mm_shuffle_epi32(_mm_cvtsi32_si128(wb[x]), 0);  // w01 w11 ...
        __m128i s = _mm_add_epi32(_mm_madd_epi16(t0, w0), _mm_madd_epi16(t1, w1));
        s = _mm_srli_epi32(_mm_add_epi32(s, round), kWBits);
        s = _mm_packs_epi32(s, s);
        return _mm_cvtsi128_si32(_mm_packus_epi16(s, s));
    };
    // 4-byte stores overlap the next pixel, which is written afterwards; the last pixel of
    // the span stores exactly 3 bytes.
    for (int x = x0; x < x1 - 1; ++x) {
        const int v = pixel(x);
        std::memcpy(orow + 3 * static_cast<size_t>(x), &v, 4);
    }
    const int v = pixel(x1 - 1);
    uint8_t* op = orow + 3 * static_cast<size_t>(x1 - 1);
    op[0] = static_cast<uint8_t>(v);
    op[1] = static_cast<uint8_t>(v >> 8);
    op[2] = static_cast<uint8_t>(v >> 16);
#else
    // Portable scalar path (bit-identical results to the SIMD one).
    (void)ofs, (void)wa, (void)wb, (void)prefetch;
    for (int x = x0; x < x1; ++x) {
        const int qx = tx[x], qy = ty[x];
        const int sx = std::min(std::max(qx >> kFracBits, 0), sx_max);
        const int sy = std::min(std::max(qy >> kFracBits, 0), sy_max);
        const Weights w = bilinear_weights(qx & kFracMask, qy & kFracMask);
        const uint8_t* p0 = image + static_cast<size_t>(sy) * stride + static_cast<size_t>(sx) * 3;
        const uint8_t* p1 = p0 + stride;
        uint8_t* op = orow + 3 * static_cast<size_t>(x);
        for (int c = 0; c < 3; ++c) {
            const int v = p0[c] * w.w00 + p0[c + 3] * w.w01 + p1[c] * w.w10 + p1[c + 3] * w.w11;
            op[c] = static_cast<uint8_t>((v + kWRound) >> kWBits);
        }
    }
#endif
}
}  // namespace

void warp_affine(const uint8_t* image, int height, int width, const double* matrices, int64_t k,
                 int out_h, int out_w, uint8_t border, uint8_t* out) {
    const size_t stride = static_cast<size_t>(width) * 3;
    std::vector<int> tx(static_cast<size_t>(out_w)), ty(static_cast<size_t>(out_w));
    std::vector<int> ofs(static_cast<size_t>(out_w)), wa(static_cast<size_t>(out_w)),
        wb(static_cast<size_t>(out_w));
    // Interior: 0 <= qx < (width - 2) * 2048 and 0 <= qy < (height - 1) * 2048, i.e.
    // sx <= width - 3 (so that the 8-byte loads stay inside the image) and sy <= height - 2.
    const unsigned qx_lim = width >= 3 ? static_cast<unsigned>(width - 2) << kFracBits : 0u;
    const unsigned qy_lim = height >= 2 ? static_cast<unsigned>(height - 1) << kFracBits : 0u;
    auto interior = [&](int x) {
        return static_cast<unsigned>(tx[x]) < qx_lim && static_cast<unsigned>(ty[x]) < qy_lim;
    };
    for (int64_t n = 0; n < k; ++n) {
        const double* M = matrices + 6 * n;
        for (int i = 0; i < 6; ++i) {
            if (!std::isfinite(M[i])) {
                throw InvalidArgument("matrices[" + std::to_string(n) + "] contains NaN or inf");
            }
        }
        double D = M[0] * M[4] - M[1] * M[3];
        const double norm = std::abs(M[0] * M[4]) + std::abs(M[1] * M[3]);
        if (!(D != 0.0 && std::abs(D) > 1e-12 * norm && std::isfinite(1.0 / D))) {
            throw InvalidArgument("matrices[" + std::to_string(n) +
                                  "] is not invertible (determinant " + std::to_string(D) + ")");
        }
        // cv2.invertAffineTransform.
        D = 1.0 / D;
        const double A11 = M[4] * D, A22 = M[0] * D, A12 = -M[1] * D, A21 = -M[3] * D;
        const double B1 = -A11 * M[2] - A12 * M[5];
        const double B2 = -A21 * M[2] - A22 * M[5];
        constexpr int kBiasInt = 8 * kFracOne;
        constexpr double kBias = kBiasInt;
        const double lo_x = kBias - 4.0 * kFracOne, hi_x = kBias + (width + 4.0) * kFracOne;
        const double lo_y = kBias - 4.0 * kFracOne, hi_y = kBias + (height + 4.0) * kFracOne;
        uint8_t* o = out + static_cast<size_t>(n) * out_h * out_w * 3;
        // Byte offset in the source between a pixel and the same pixel kPrefetchRows rows further down
        // in the output (only used as a prefetch hint).
        const double pfx = std::min(std::max(A12 * kPrefetchRows, -1e6), 1e6);
        const double pfy = std::min(std::max(A22 * kPrefetchRows, -1e6), 1e6);
        const ptrdiff_t prefetch = static_cast<ptrdiff_t>(std::lround(pfy)) * static_cast<ptrdiff_t>(stride) +
                                   static_cast<ptrdiff_t>(std::lround(pfx)) * 3;
        const int bv = border;
        for (int y = 0; y < out_h; ++y) {
            const double bx = A12 * y + B1, by = A22 * y + B2;
            // Pass 1 (vectorizable): positions in 1/2048 px, floor(X * 2048 + 0.5), with X
            // clamped to [-4, width + 4] (far-away positions only read the border; this keeps
            // the int conversion defined). Shifted by +8 px so that truncation is floor.
            const double cx = A11 * kFracOne, cy = A21 * kFracOne;
            const double ox = bx * kFracOne + 0.5 + kBias, oy = by * kFracOne + 0.5 + kBias;
            int x = 0;
#if defined(__SSE2__)
            {
                const __m128d vcx = _mm_set1_pd(cx), vcy = _mm_set1_pd(cy);
                const __m128d vox = _mm_set1_pd(ox), voy = _mm_set1_pd(oy);
                const __m128d vlx = _mm_set1_pd(lo_x), vhx = _mm_set1_pd(hi_x);
                const __m128d vly = _mm_set1_pd(lo_y), vhy = _mm_set1_pd(hi_y);
                const __m128d two = _mm_set1_pd(2.0);
                const __m128i bias = _mm_set1_epi32(kBiasInt);
                __m128d xv = _mm_set_pd(1.0, 0.0);
                for (; x + 2 <= out_w; x += 2, xv = _mm_add_pd(xv, two)) {
                    const __m128d X = _mm_min_pd(_mm_max_pd(_mm_add_pd(_mm_mul_pd(vcx, xv), vox), vlx), vhx);
                    const __m128d Y = _mm_min_pd(_mm_max_pd(_mm_add_pd(_mm_mul_pd(vcy, xv), voy), vly), vhy);
                    _mm_storel_epi64(reinterpret_cast<__m128i*>(tx.data() + x),
                                     _mm_sub_epi32(_mm_cvttpd_epi32(X), bias));
                    _mm_storel_epi64(reinterpret_cast<__m128i*>(ty.data() + x),
                                     _mm_sub_epi32(_mm_cvttpd_epi32(Y), bias));
                }
            }
#endif
            for (; x < out_w; ++x) {
                const double xd = x;
                const double X = std::min(std::max(cx * xd + ox, lo_x), hi_x);
                const double Y = std::min(std::max(cy * xd + oy, lo_y), hi_y);
                tx[x] = static_cast<int>(X) - kBiasInt;
                ty[x] = static_cast<int>(Y) - kBiasInt;
            }
            // The positions are monotone in x, so the interior pixels form one span [x0, x1):
            // fast path there, border handling only outside it.
            int x0 = 0, x1 = out_w;
            while (x0 < x1 && !interior(x0)) ++x0;
            while (x1 > x0 && !interior(x1 - 1)) --x1;
            uint8_t* orow = o + static_cast<size_t>(y) * out_w * 3;
            for (int x = 0; x < x0; ++x) {
                sample_border(image, height, width, stride, tx[x], ty[x], bv, orow + 3 * x);
            }
            sample_interior(image, height, width, stride, tx.data(), ty.data(), x0, x1, ofs.data(),
                            wa.data(), wb.data(), prefetch, orow);
            for (int x = x1; x < out_w; ++x) {
                sample_border(image, height, width, stride, tx[x], ty[x], bv, orow + 3 * x);
            }
        }
    }
}

}  // namespace edgeface
