#include "pyramid.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>

#include "errors.hpp"

namespace edgeface {

std::vector<double> pyramid_scales(long long height, long long width, double min_face_size,
                                   double factor, long long max_levels, long long min_size) {
    if (height <= 0 || width <= 0) {
        throw InvalidArgument("height and width must be > 0, got height=" +
                              std::to_string(height) + ", width=" + std::to_string(width));
    }
    if (height > kMaxImageSide || width > kMaxImageSide) {
        throw InvalidArgument("height and width must be <= " + std::to_string(kMaxImageSide) +
                              ", got height=" + std::to_string(height) +
                              ", width=" + std::to_string(width));
    }
    if (!(std::isfinite(min_face_size) && min_face_size > 0.0)) {
        throw InvalidArgument("min_face_size must be a finite number > 0, got " +
                              std::to_string(min_face_size));
    }
    if (!(factor > 0.0 && factor < 1.0)) {
        throw InvalidArgument("factor must be in (0, 1), got " + std::to_string(factor));
    }
    if (max_levels < 0 || max_levels > 1000) {
        throw InvalidArgument("max_levels must be in [0, 1000], got " +
                              std::to_string(max_levels));
    }
    if (min_size <= 0 || min_size > kMaxImageSide) {
        throw InvalidArgument("min_size must be in [1, 32768], got " + std::to_string(min_size));
    }
    const double ms = static_cast<double>(min_size);
    const double m = ms / min_face_size;
    double minl = static_cast<double>(std::min(height, width)) * m;
    double s = m;
    std::vector<double> out;
    while (minl >= ms && static_cast<long long>(out.size()) < max_levels) {
        out.push_back(s);
        s *= factor;
        minl *= factor;
    }
    return out;
}

namespace {

inline int even_up(long long v) { return static_cast<int>((v + 1) & ~1LL); }

constexpr int kGap = 2;

bool conflicts(const LevelRect& a, const LevelRect& b) {
    return a.x < b.x + b.w + kGap && b.x < a.x + a.w + kGap && a.y < b.y + b.h + kGap &&
           b.y < a.y + a.h + kGap;
}

}  // namespace

PyramidLayout layout_pyramid(int height, int width, const std::vector<double>& scales) {
    PyramidLayout lay;
    const size_t L = scales.size();
    lay.rects.resize(L);
    std::vector<long long> area(L);
    for (size_t i = 0; i < L; ++i) {
        const double s = scales[i];
        if (!(std::isfinite(s) && s > 0.0)) {
            throw InvalidArgument("scales[" + std::to_string(i) +
                                  "] must be a finite number > 0, got " + std::to_string(s));
        }
        const double hd = std::ceil(height * s), wd = std::ceil(width * s);
        if (hd > kMaxImageSide || wd > kMaxImageSide) {
            throw InvalidArgument("scales[" + std::to_string(i) + "] = " + std::to_string(s) +
                                  " makes a level larger than 32768 px on a side");
        }
        lay.rects[i] = LevelRect{0, 0, static_cast<int>(wd), static_cast<int>(hd)};
        area[i] = static_cast<long long>(wd) * static_cast<long long>(hd);
    }
    std::vector<size_t> order(L);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return area[a] > area[b]; });
    std::vector<LevelRect> placed;
    long long cw = 0, ch = 0;
    for (size_t i : order) {
        LevelRect r = lay.rects[i];
        std::vector<std::pair<long long, long long>> cands{{0, 0}};
        for (const LevelRect& p : placed) {
            const long long right = even_up(static_cast<long long>(p.x) + p.w + kGap);
            const long long below = even_up(static_cast<long long>(p.y) + p.h + kGap);
            cands.push_back({right, p.y});
            cands.push_back({p.x, below});
            cands.push_back({right, 0});
            cands.push_back({0, below});
        }
        bool found = false;
        long long bx = 0, by = 0, bkey0 = 0, bkey1 = 0;
        for (auto [x, y] : cands) {
            LevelRect c{static_cast<int>(x), static_cast<int>(y), r.w, r.h};
            bool ok = true;
            for (const LevelRect& p : placed) {
                if (conflicts(c, p)) { ok = false; break; }
            }
            if (!ok) continue;
            const long long nw = std::max(cw, x + r.w), nh = std::max(ch, y + r.h);
            const long long k0 = nw * nh, k1 = std::max(nw, nh);
            if (!found || k0 < bkey0 || (k0 == bkey0 && (k1 < bkey1 || (k1 == bkey1 &&
                                        (y < by || (y == by && x < bx)))))) {
                found = true; bx = x; by = y; bkey0 = k0; bkey1 = k1;
            }
        }
        // A candidate right of everything always exists; `found` is true here.
        r.x = static_cast<int>(bx);
        r.y = static_cast<int>(by);
        placed.push_back(r);
        lay.rects[i] = r;
        cw = std::max(cw, bx + r.w);
        ch = std::max(ch, by + r.h);
        if (cw > 4 * kMaxImageSide || ch > 4 * kMaxImageSide || cw * ch * 3 > kMaxOutputElements) {
            throw InvalidArgument("scales produce a pyramid canvas larger than " +
                                  std::to_string(kMaxOutputElements) + " elements");
        }
    }
    lay.canvas_w = static_cast<int>(cw);
    lay.canvas_h = static_cast<int>(ch);
    return lay;
}

namespace {

// cv2 INTER_LINEAR sampling along one axis: output i maps to (i + 0.5) * ratio - 0.5 with
// ratio = src / dst, clamped to the border (replicate).
void axis_table(int src, int dst, std::vector<int>& i0, std::vector<int>& i1,
                std::vector<float>& a) {
    i0.resize(dst); i1.resize(dst); a.resize(dst);
    const double ratio = static_cast<double>(src) / dst;
    for (int d = 0; d < dst; ++d) {
        const float f = static_cast<float>((d + 0.5) * ratio - 0.5);
        int s = static_cast<int>(std::floor(f));
        float w = f - static_cast<float>(s);
        if (s < 0) { s = 0; w = 0.0f; }
        if (s >= src - 1) { s = src - 1; w = 0.0f; }
        i0[d] = s;
        i1[d] = std::min(s + 1, src - 1);
        a[d] = w;
    }
}

void hresize_row(const uint8_t* __restrict row, const int* __restrict o0,
                 const int* __restrict o1, const float* __restrict a, int w, int c0, int c2,
                 float* __restrict out) {
    float* __restrict p0 = out;
    float* __restrict p1 = out + w;
    float* __restrict p2 = out + 2 * w;
    for (int d = 0; d < w; ++d) {
        const uint8_t* s0 = row + o0[d];
        const uint8_t* s1 = row + o1[d];
        const float t = a[d];
        const float v0 = s0[c0], v1 = s0[1], v2 = s0[c2];
        p0[d] = v0 + t * (static_cast<float>(s1[c0]) - v0);
        p1[d] = v1 + t * (static_cast<float>(s1[1]) - v1);
        p2[d] = v2 + t * (static_cast<float>(s1[c2]) - v2);
    }
}

}  // namespace

void render_pyramid(const uint8_t* image, int height, int width, const PyramidLayout& lay,
                    float* canvas, bool swap_rb, float mean, float scale) {
    const size_t CW = static_cast<size_t>(lay.canvas_w), CH = static_cast<size_t>(lay.canvas_h);
    const size_t plane = CW * CH;
    const int c0 = swap_rb ? 2 : 0, c2 = swap_rb ? 0 : 2;
    const float bias = -mean * scale;

    // Zero the gaps, row by row (levels sorted by x).
    std::vector<size_t> byx(lay.rects.size());
    std::iota(byx.begin(), byx.end(), size_t{0});
    std::sort(byx.begin(), byx.end(),
              [&](size_t a, size_t b) { return lay.rects[a].x < lay.rects[b].x; });
    for (size_t r = 0; r < CH; ++r) {
        size_t cur = 0;
        for (size_t li : byx) {
            const LevelRect& q = lay.rects[li];
            if (static_cast<size_t>(q.y) <= r && r < static_cast<size_t>(q.y + q.h)) {
                if (static_cast<size_t>(q.x) > cur) {
                    for (int c = 0; c < 3; ++c)
                        std::memset(canvas + c * plane + r * CW + cur, 0,
                                    (q.x - cur) * sizeof(float));
                }
                cur = std::max(cur, static_cast<size_t>(q.x + q.w));
            }
        }
        if (cur < CW) {
            for (int c = 0; c < 3; ++c)
                std::memset(canvas + c * plane + r * CW + cur, 0, (CW - cur) * sizeof(float));
        }
    }

    std::vector<int> xi0, xi1, yi0, yi1;
    std::vector<float> xa, ya;
    std::vector<float> buf;
    const size_t stride = static_cast<size_t>(width) * 3;
    for (const LevelRect& q : lay.rects) {
        const int w = q.w, h = q.h;
        axis_table(width, w, xi0, xi1, xa);
        axis_table(height, h, yi0, yi1, ya);
        for (int d = 0; d < w; ++d) { xi0[d] *= 3; xi1[d] *= 3; }
        buf.resize(static_cast<size_t>(6) * w);
        float* rows[2] = {buf.data(), buf.data() + 3 * static_cast<size_t>(w)};
        int have[2] = {-1, -1};
        for (int dy = 0; dy < h; ++dy) {
            const int sy0 = yi0[dy], sy1 = yi1[dy];
            const float b = ya[dy];
            // Make rows[0] hold source row sy0 and rows[1] hold sy1 (reuse when possible).
            if (have[0] != sy0) {
                if (have[1] == sy0) {
                    std::swap(rows[0], rows[1]);
                    std::swap(have[0], have[1]);
                } else {
                    hresize_row(image + sy0 * stride, xi0.data(), xi1.data(), xa.data(), w, c0,
                                c2, rows[0]);
                    have[0] = sy0;
                }
            }
            if (b != 0.0f && have[1] != sy1) {
                hresize_row(image + sy1 * stride, xi0.data(), xi1.data(), xa.data(), w, c0, c2,
                            rows[1]);
                have[1] = sy1;
            }
            const size_t off = (static_cast<size_t>(q.y) + dy) * CW + q.x;
            for (int c = 0; c < 3; ++c) {
                float* __restrict o = canvas + c * plane + off;
                const float* __restrict r0 = rows[0] + static_cast<size_t>(c) * w;
                if (b == 0.0f) {
                    for (int d = 0; d < w; ++d) o[d] = r0[d] * scale + bias;
                } else {
                    const float* __restrict r1 = rows[1] + static_cast<size_t>(c) * w;
                    const float w0 = (1.0f - b) * scale, w1 = b * scale;
                    for (int d = 0; d < w; ++d) o[d] = r0[d] * w0 + r1[d] * w1 + bias;
                }
            }
        }
    }
}

}  // namespace edgeface
