// Face alignment: 2-D similarity (Umeyama) estimation and bilinear affine warping.
#pragma once

#include <cstdint>

namespace edgeface {

// Least-squares similarity (rotation + uniform scale + translation, no reflection) mapping
// src (n x 2) onto dst (n x 2); writes a row-major 2x3 matrix to m. Throws InvalidArgument
// for non-finite points, degenerate src (zero variance) or a degenerate result (scale 0).
// `what` names the source array in error messages.
template <typename S, typename D>
void similarity_transform(const S* src, const D* dst, int64_t n, double* m, const char* what);

// out: k x oh x ow x 3 uint8. matrices: k x 2 x 3 mapping source -> destination (inverted
// here, as cv2.invertAffineTransform). Destination pixel (x, y) samples the source at
// M^-1 (x, y) (integer pixel coordinates, no half-pixel shift, like cv2.warpAffine), bilinear
// with positions quantised to 1/2048 px and integer weights (OpenCV >= 4.11 / 5.x computes in
// float: within 1 grey level; older OpenCV quantises positions to 1/32 px: up to ~2 levels), constant border: each of the 4 taps outside
// the image reads `border`. Throws InvalidArgument for a non-invertible / non-finite matrix.
void warp_affine(const uint8_t* image, int height, int width, const double* matrices, int64_t k,
                 int out_h, int out_w, uint8_t border, uint8_t* out);

}  // namespace edgeface
