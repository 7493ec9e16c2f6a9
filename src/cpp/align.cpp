#include "align.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "errors.hpp"

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
// Sample positions are quantised to 1/2048 px (11 bits); the bilinear weights are products of
// two 11-bit fractions, so they sum to 2^22 and 255 * 2^22 fits in an int. The difference to
// exact float bilinear is < 0.2 grey level before rounding.
constexpr int kFracBits = 11;
constexpr int kFracOne = 1 << kFracBits;
constexpr int kRound = 1 << (2 * kFracBits - 1);
}  // namespace

void warp_affine(const uint8_t* image, int height, int width, const double* matrices, int64_t k,
                 int out_h, int out_w, uint8_t border, uint8_t* out) {
    const size_t stride = static_cast<size_t>(width) * 3;
    std::vector<int> tx(static_cast<size_t>(out_w)), ty(static_cast<size_t>(out_w));
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
        // Far-away sample positions only read the border: clamp them so that the int
        // conversions below stay defined.
        const double lo_x = -4.0, hi_x = width + 4.0, lo_y = -4.0, hi_y = height + 4.0;
        uint8_t* o = out + static_cast<size_t>(n) * out_h * out_w * 3;
        const int bv = border;
        for (int y = 0; y < out_h; ++y) {
            const double bx = A12 * y + B1, by = A22 * y + B2;
            // Pass 1 (vectorizable): integer tap positions and 11-bit fractional weights.
            for (int x = 0; x < out_w; ++x) {
                const double X = std::min(std::max(A11 * x + bx, lo_x), hi_x);
                const double Y = std::min(std::max(A21 * x + by, lo_y), hi_y);
                const double Xs = X * kFracOne, Ys = Y * kFracOne;
                // floor(X * 2048 + 0.5) without libm: truncation corrected for negatives.
                int qx = static_cast<int>(Xs + 0.5), qy = static_cast<int>(Ys + 0.5);
                qx -= static_cast<double>(qx) > Xs + 0.5;
                qy -= static_cast<double>(qy) > Ys + 0.5;
                tx[x] = qx;
                ty[x] = qy;
            }
            uint8_t* orow = o + static_cast<size_t>(y) * out_w * 3;
            // Pass 2: bilinear taps in integer arithmetic (weights sum to 2^22).
            for (int x = 0; x < out_w; ++x) {
                const int qx = tx[x], qy = ty[x];
                const int sx = qx >> kFracBits, sy = qy >> kFracBits;
                const int ax = qx & (kFracOne - 1), ay = qy & (kFracOne - 1);
                const int w00 = (kFracOne - ax) * (kFracOne - ay), w01 = ax * (kFracOne - ay);
                const int w10 = (kFracOne - ax) * ay, w11 = ax * ay;
                uint8_t* op = orow + 3 * static_cast<size_t>(x);
                if (static_cast<unsigned>(sx) < static_cast<unsigned>(width - 1) &&
                    static_cast<unsigned>(sy) < static_cast<unsigned>(height - 1)) {
                    const uint8_t* p0 = image + sy * stride + sx * 3;
                    const uint8_t* p1 = p0 + stride;
                    const int v0 = p0[0] * w00 + p0[3] * w01 + p1[0] * w10 + p1[3] * w11;
                    const int v1 = p0[1] * w00 + p0[4] * w01 + p1[1] * w10 + p1[4] * w11;
                    const int v2 = p0[2] * w00 + p0[5] * w01 + p1[2] * w10 + p1[5] * w11;
                    op[0] = static_cast<uint8_t>((v0 + kRound) >> (2 * kFracBits));
                    op[1] = static_cast<uint8_t>((v1 + kRound) >> (2 * kFracBits));
                    op[2] = static_cast<uint8_t>((v2 + kRound) >> (2 * kFracBits));
                } else if (sx + 1 < 0 || sy + 1 < 0 || sx >= width || sy >= height) {
                    op[0] = op[1] = op[2] = border;
                } else {
                    const bool vx0 = sx >= 0 && sx < width, vx1 = sx + 1 >= 0 && sx + 1 < width;
                    const bool vy0 = sy >= 0 && sy < height, vy1 = sy + 1 >= 0 && sy + 1 < height;
                    for (int c = 0; c < 3; ++c) {
                        const int t00 = (vy0 && vx0) ? image[sy * stride + sx * 3 + c] : bv;
                        const int t01 =
                            (vy0 && vx1) ? image[sy * stride + (sx + 1) * 3 + c] : bv;
                        const int t10 =
                            (vy1 && vx0) ? image[(sy + 1) * stride + sx * 3 + c] : bv;
                        const int t11 =
                            (vy1 && vx1) ? image[(sy + 1) * stride + (sx + 1) * 3 + c] : bv;
                        const int v = t00 * w00 + t01 * w01 + t10 * w10 + t11 * w11;
                        op[c] = static_cast<uint8_t>((v + kRound) >> (2 * kFracBits));
                    }
                }
            }
        }
    }
}

}  // namespace edgeface
