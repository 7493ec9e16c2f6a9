#include "boxes.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "errors.hpp"

namespace edgeface {

void check_finite_boxes(const float* boxes, int64_t k, const char* name) {
    for (int64_t i = 0; i < 4 * k; ++i) {
        if (!std::isfinite(boxes[i])) {
            throw InvalidArgument(std::string(name) + "[" + std::to_string(i / 4) +
                                  "] contains NaN or inf; values must be finite");
        }
    }
}

void pnet_candidates(const float* prob, const float* reg, int64_t mh, int64_t mw,
                     const std::vector<LevelRect>& rects, const std::vector<double>& scales,
                     float threshold, int stride, int cell, std::vector<float>& rows,
                     std::vector<int32_t>& levels) {
    const size_t plane = static_cast<size_t>(mh) * static_cast<size_t>(mw);
    for (size_t l = 0; l < rects.size(); ++l) {
        const LevelRect& q = rects[l];
        if (q.w < cell || q.h < cell) continue;  // no full window fits in this level
        const int64_t nj = (q.w - cell) / stride + 1, ni = (q.h - cell) / stride + 1;
        const int64_t j0 = q.x / stride, i0 = q.y / stride;
        const double s = scales[l];
        for (int64_t ci = 0; ci < ni; ++ci) {
            const float* prow = prob + (i0 + ci) * mw + j0;
            for (int64_t cj = 0; cj < nj; ++cj) {
                const float p = prow[cj];
                if (!std::isfinite(p)) {
                    throw InvalidArgument("prob contains NaN or inf at (" +
                                          std::to_string(i0 + ci) + ", " +
                                          std::to_string(j0 + cj) + ")");
                }
                if (!(p > threshold)) continue;
                const size_t at = static_cast<size_t>(i0 + ci) * mw + (j0 + cj);
                float r[4];
                for (int c = 0; c < 4; ++c) {
                    r[c] = reg[c * plane + at];
                    if (!std::isfinite(r[c])) {
                        throw InvalidArgument("reg contains NaN or inf at (" + std::to_string(c) +
                                              ", " + std::to_string(i0 + ci) + ", " +
                                              std::to_string(j0 + cj) + ")");
                    }
                }
                const double bx = static_cast<double>(stride) * cj;
                const double by = static_cast<double>(stride) * ci;
                rows.push_back(static_cast<float>((bx + 1.0) / s));
                rows.push_back(static_cast<float>((by + 1.0) / s));
                rows.push_back(static_cast<float>((bx + cell) / s));
                rows.push_back(static_cast<float>((by + cell) / s));
                rows.push_back(p);
                rows.insert(rows.end(), r, r + 4);
                levels.push_back(static_cast<int32_t>(l));
            }
        }
    }
}

void calibrate_boxes(const float* boxes, const float* reg, int64_t k, float* out) {
    for (int64_t i = 0; i < k; ++i) {
        const float* b = boxes + 4 * i;
        const float* r = reg + 4 * i;
        const float w = b[2] - b[0] + 1.0f, h = b[3] - b[1] + 1.0f;
        float* o = out + 4 * i;
        o[0] = b[0] + r[0] * w;
        o[1] = b[1] + r[1] * h;
        o[2] = b[2] + r[2] * w;
        o[3] = b[3] + r[3] * h;
    }
}

void square_boxes(const float* boxes, int64_t k, float* out) {
    for (int64_t i = 0; i < k; ++i) {
        const float* b = boxes + 4 * i;
        const float w = b[2] - b[0], h = b[3] - b[1];
        const float l = std::max(w, h);
        float* o = out + 4 * i;
        const float x1 = b[0] + w * 0.5f - l * 0.5f;
        const float y1 = b[1] + h * 0.5f - l * 0.5f;
        o[0] = x1;
        o[1] = y1;
        o[2] = x1 + l;
        o[3] = y1 + l;
    }
}

void clip_boxes(const float* boxes, int64_t k, float width, float height, float* out) {
    for (int64_t i = 0; i < k; ++i) {
        const float* b = boxes + 4 * i;
        float* o = out + 4 * i;
        o[0] = std::min(std::max(b[0], 0.0f), width);
        o[1] = std::min(std::max(b[1], 0.0f), height);
        o[2] = std::min(std::max(b[2], 0.0f), width);
        o[3] = std::min(std::max(b[3], 0.0f), height);
    }
}

namespace {

// Sampling table along one axis for crop_resize: 2 taps per output sample, a tap outside
// the image gets weight 0 (zero padding) and a harmless in-range index.
void crop_axis(double lo, double hi, int size, int limit, int* t0, int* t1, float* w0,
               float* w1) {
    const double step = (hi - lo) / size;
    const double cmax = std::max(lo, hi - 1.0);
    for (int u = 0; u < size; ++u) {
        double s = lo + (u + 0.5) * step - 0.5;
        // cv2.resize of the cropped patch replicates the patch border: clamp into it.
        s = std::min(std::max(s, lo), cmax);
        // Far outside the image every tap reads 0; clamp to keep the int conversion defined.
        s = std::min(std::max(s, -4.0), static_cast<double>(limit) + 4.0);
        const double f = std::floor(s);
        const int i = static_cast<int>(f);
        const float a = static_cast<float>(s - f);
        const bool v0 = i >= 0 && i < limit, v1 = i + 1 >= 0 && i + 1 < limit;
        t0[u] = v0 ? i : 0;
        t1[u] = v1 ? i + 1 : 0;
        w0[u] = v0 ? 1.0f - a : 0.0f;
        w1[u] = v1 ? a : 0.0f;
    }
}

}  // namespace

void crop_resize(const uint8_t* image, int height, int width, const float* boxes, int64_t k,
                 int size, bool swap_rb, float mean, float scale, float* out) {
    check_finite_boxes(boxes, k, "boxes");
    for (int64_t n = 0; n < k; ++n) {
        const float* b = boxes + 4 * n;
        if (b[2] < b[0] || b[3] < b[1]) {
            throw InvalidArgument("boxes[" + std::to_string(n) +
                                  "] must satisfy x2 >= x1 and y2 >= y1, got (" +
                                  std::to_string(b[0]) + ", " + std::to_string(b[1]) + ", " +
                                  std::to_string(b[2]) + ", " + std::to_string(b[3]) + ")");
        }
    }
    const int c0 = swap_rb ? 2 : 0, c2 = swap_rb ? 0 : 2;
    const size_t S = static_cast<size_t>(size);
    const size_t plane = S * S;
    const size_t stride = static_cast<size_t>(width) * 3;
    std::vector<int> xt0(S), xt1(S), yt0(S), yt1(S);
    std::vector<float> xw0(S), xw1(S), yw0(S), yw1(S);
    const float bias = -mean * scale;
    for (int64_t n = 0; n < k; ++n) {
        const float* b = boxes + 4 * n;
        crop_axis(b[0], b[2], size, width, xt0.data(), xt1.data(), xw0.data(), xw1.data());
        crop_axis(b[1], b[3], size, height, yt0.data(), yt1.data(), yw0.data(), yw1.data());
        for (size_t u = 0; u < S; ++u) { xt0[u] *= 3; xt1[u] *= 3; }
        float* o0 = out + static_cast<size_t>(n) * 3 * plane;
        float* o1 = o0 + plane;
        float* o2 = o1 + plane;
        for (size_t v = 0; v < S; ++v) {
            const uint8_t* r0 = image + yt0[v] * stride;
            const uint8_t* r1 = image + yt1[v] * stride;
            const float a0 = yw0[v] * scale, a1 = yw1[v] * scale;
            for (size_t u = 0; u < S; ++u) {
                const uint8_t* p00 = r0 + xt0[u];
                const uint8_t* p01 = r0 + xt1[u];
                const uint8_t* p10 = r1 + xt0[u];
                const uint8_t* p11 = r1 + xt1[u];
                const float bx0 = xw0[u], bx1 = xw1[u];
                const size_t at = v * S + u;
                o0[at] = a0 * (bx0 * p00[c0] + bx1 * p01[c0]) +
                         a1 * (bx0 * p10[c0] + bx1 * p11[c0]) + bias;
                o1[at] = a0 * (bx0 * p00[1] + bx1 * p01[1]) + a1 * (bx0 * p10[1] + bx1 * p11[1]) +
                         bias;
                o2[at] = a0 * (bx0 * p00[c2] + bx1 * p01[c2]) +
                         a1 * (bx0 * p10[c2] + bx1 * p11[c2]) + bias;
            }
        }
    }
}

}  // namespace edgeface
