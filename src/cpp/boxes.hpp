// MTCNN box bookkeeping: P-Net candidate generation, regression, squaring, clipping and
// batched crop-and-resize for R-Net / O-Net.
#pragma once

#include <cstdint>
#include <vector>

#include "pyramid.hpp"

namespace edgeface {

// prob: mh x mw, reg: 4 x mh x mw. Appends rows of 9 floats (x1,y1,x2,y2,score,reg0..3) to
// `rows` and the level id to `levels`. See _core.pyi for the exact convention.
void pnet_candidates(const float* prob, const float* reg, int64_t mh, int64_t mw,
                     const std::vector<LevelRect>& rects, const std::vector<double>& scales,
                     float threshold, int stride, int cell, std::vector<float>& rows,
                     std::vector<int32_t>& levels);

// Throws InvalidArgument naming `name` when any value of the k x 4 array is not finite.
void check_finite_boxes(const float* boxes, int64_t k, const char* name);

void calibrate_boxes(const float* boxes, const float* reg, int64_t k, float* out);
void square_boxes(const float* boxes, int64_t k, float* out);
void clip_boxes(const float* boxes, int64_t k, float width, float height, float* out);

// out: k x 3 x size x size float32.
void crop_resize(const uint8_t* image, int height, int width, const float* boxes, int64_t k,
                 int size, bool swap_rb, float mean, float scale, float* out);

}  // namespace edgeface
