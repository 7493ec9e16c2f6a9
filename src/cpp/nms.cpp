#include "nms.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "errors.hpp"

namespace edgeface {
namespace {

void validate(const float* boxes, const float* scores, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float* b = boxes + 4 * i;
        if (!(std::isfinite(b[0]) && std::isfinite(b[1]) && std::isfinite(b[2]) &&
              std::isfinite(b[3]))) {
            throw InvalidArgument("boxes[" + std::to_string(i) +
                                  "] contains NaN or inf; boxes must be finite");
        }
        if (b[2] < b[0] || b[3] < b[1]) {
            throw InvalidArgument("boxes[" + std::to_string(i) +
                                  "] must satisfy x2 >= x1 and y2 >= y1, got (" +
                                  std::to_string(b[0]) + ", " + std::to_string(b[1]) + ", " +
                                  std::to_string(b[2]) + ", " + std::to_string(b[3]) + ")");
        }
        if (!std::isfinite(scores[i])) {
            throw InvalidArgument("scores[" + std::to_string(i) +
                                  "] is NaN or inf; scores must be finite");
        }
    }
}

// Structure-of-arrays workspace: the candidates still alive, in processing order.
struct Workspace {
    std::vector<float> x1, y1, x2, y2, area;
    std::vector<int64_t> idx;
    std::vector<uint8_t> keep;
    void resize(size_t m) {
        x1.resize(m); y1.resize(m); x2.resize(m); y2.resize(m); area.resize(m);
        idx.resize(m); keep.resize(m);
    }
};

// Greedy NMS over `order[0..m)` (already sorted by descending score, stable). Each round
// takes the first alive candidate, keeps it, and compacts the survivors in place, so the
// cost is sum over kept boxes of the number of candidates still alive.
template <NmsMode M>
void greedy(const float* boxes, const int64_t* order, size_t m, float thr,
            std::vector<int64_t>& out, Workspace& ws) {
    ws.resize(m);
    float* __restrict X1 = ws.x1.data();
    float* __restrict Y1 = ws.y1.data();
    float* __restrict X2 = ws.x2.data();
    float* __restrict Y2 = ws.y2.data();
    float* __restrict A = ws.area.data();
    int64_t* __restrict I = ws.idx.data();
    uint8_t* __restrict K = ws.keep.data();
    for (size_t k = 0; k < m; ++k) {
        const float* b = boxes + 4 * order[k];
        X1[k] = b[0]; Y1[k] = b[1]; X2[k] = b[2]; Y2[k] = b[3];
        A[k] = (b[2] - b[0]) * (b[3] - b[1]);
        I[k] = order[k];
    }
    size_t n = m;
    while (n > 0) {
        const float ax1 = X1[0], ay1 = Y1[0], ax2 = X2[0], ay2 = Y2[0], aa = A[0];
        out.push_back(I[0]);
        // Pass 1 (vectorizable): survivor flags.
        for (size_t j = 1; j < n; ++j) {
            const float iw = std::max(std::min(ax2, X2[j]) - std::max(ax1, X1[j]), 0.0f);
            const float ih = std::max(std::min(ay2, Y2[j]) - std::max(ay1, Y1[j]), 0.0f);
            const float inter = iw * ih;
            float denom;
            if constexpr (M == NmsMode::IoU) {
                denom = aa + A[j] - inter;
            } else {
                denom = std::min(aa, A[j]);
            }
            // overlap = inter / denom > thr  <=>  inter > thr * denom (denom >= 0); a zero
            // denominator means zero intersection, i.e. overlap 0 (never suppressed).
            K[j] = static_cast<uint8_t>(!(inter > thr * denom));
        }
        // Pass 2: compact survivors to the front.
        size_t w = 0;
        for (size_t j = 1; j < n; ++j) {
            if (K[j]) {
                X1[w] = X1[j]; Y1[w] = Y1[j]; X2[w] = X2[j]; Y2[w] = Y2[j];
                A[w] = A[j]; I[w] = I[j];
                ++w;
            }
        }
        n = w;
    }
}

void run_greedy(const float* boxes, const int64_t* order, size_t m, float thr, NmsMode mode,
                std::vector<int64_t>& out, Workspace& ws) {
    if (mode == NmsMode::IoU) {
        greedy<NmsMode::IoU>(boxes, order, m, thr, out, ws);
    } else {
        greedy<NmsMode::Min>(boxes, order, m, thr, out, ws);
    }
}

void sort_by_score(std::vector<int64_t>& v, const float* scores) {
    std::sort(v.begin(), v.end(), [scores](int64_t a, int64_t b) {
        return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
    });
}

}  // namespace

std::vector<int64_t> nms(const float* boxes, const float* scores, int64_t n, float threshold,
                         NmsMode mode) {
    validate(boxes, scores, n);
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
    sort_by_score(order, scores);
    std::vector<int64_t> out;
    Workspace ws;
    run_greedy(boxes, order.data(), order.size(), threshold, mode, out, ws);
    return out;
}

template <typename G>
std::vector<int64_t> batched_nms(const float* boxes, const float* scores, const G* groups,
                                 int64_t n, float threshold, NmsMode mode) {
    validate(boxes, scores, n);
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
    // Group, then descending score, then index: each group is a contiguous, stably sorted run.
    std::sort(order.begin(), order.end(), [scores, groups](int64_t a, int64_t b) {
        if (groups[a] != groups[b]) return groups[a] < groups[b];
        return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
    });
    std::vector<int64_t> out;
    Workspace ws;
    size_t start = 0;
    const size_t total = order.size();
    while (start < total) {
        size_t end = start + 1;
        const G g = groups[order[start]];
        while (end < total && groups[order[end]] == g) ++end;
        run_greedy(boxes, order.data() + start, end - start, threshold, mode, out, ws);
        start = end;
    }
    sort_by_score(out, scores);
    return out;
}

template std::vector<int64_t> batched_nms<int32_t>(const float*, const float*, const int32_t*,
                                                   int64_t, float, NmsMode);
template std::vector<int64_t> batched_nms<int64_t>(const float*, const float*, const int64_t*,
                                                   int64_t, float, NmsMode);

}  // namespace edgeface
