// MTCNN image pyramid: scale list and a single packed, normalized, channel-first canvas.
#pragma once

#include <cstdint>
#include <vector>

namespace edgeface {

// MTCNN scale list: m = min_size / min_face_size, then m * factor^k while
// min(height, width) * scale >= min_size, at most max_levels. Validates its arguments.
std::vector<double> pyramid_scales(long long height, long long width, double min_face_size,
                                   double factor, long long max_levels, long long min_size);

struct LevelRect {
    int x, y, w, h;
};

struct PyramidLayout {
    int canvas_w = 0, canvas_h = 0;
    std::vector<LevelRect> rects;  // in the order of the scales
};

// Level sizes (ceil(W*s), ceil(H*s)) and their packing into one canvas: even x/y, >= 2 px
// gap between levels, greedy "min canvas area" placement at corner candidates.
// Throws InvalidArgument for non-positive / non-finite scales or an oversized canvas.
PyramidLayout layout_pyramid(int height, int width, const std::vector<double>& scales);

// Renders every level into canvas (3 x canvas_h x canvas_w float32, need not be
// initialized): bilinear resize with cv2 INTER_LINEAR sampling, (v - mean) * scale, planes
// in RGB order when swap_rb (input BGR). Gaps are set to 0.
void render_pyramid(const uint8_t* image, int height, int width, const PyramidLayout& layout,
                    float* canvas, bool swap_rb, float mean, float scale);

}  // namespace edgeface
