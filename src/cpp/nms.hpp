// Greedy non-maximum suppression (plain and per-group).
#pragma once

#include <cstdint>
#include <vector>

namespace edgeface {

enum class NmsMode { IoU, Min };

// boxes: n x 4 (x1, y1, x2, y2), scores: n. Validates finiteness and box order (throws
// InvalidArgument). Returns kept indices sorted by descending score, ties by lower index.
// A box is suppressed by a kept box when overlap > threshold.
std::vector<int64_t> nms(const float* boxes, const float* scores, int64_t n, float threshold,
                         NmsMode mode);

// Same, independently within each group id; result sorted like nms().
template <typename G>
std::vector<int64_t> batched_nms(const float* boxes, const float* scores, const G* groups,
                                 int64_t n, float threshold, NmsMode mode);

}  // namespace edgeface
