"""Run every C++ core kernel on fixed inputs and write or compare the results, bit for bit.

    python tools/aarch64/core_reference.py write ref.npz     # on x86_64: inputs + outputs
    python tools/aarch64/core_reference.py compare ref.npz   # on aarch64: same inputs, same outputs?

The inputs travel inside the .npz, so both machines run the kernels on the very same bytes.
`compare` prints one line per output and exits 1 unless every output is bit-identical (the
core is built with -ffp-contract=off so that x86_64 and aarch64 round alike; see CMakeLists.txt).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from edgeface import _core

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_112 = np.array([[38.29, 51.70], [73.53, 51.50], [56.03, 71.74],
                         [41.55, 92.37], [70.73, 92.20]], np.float64)


def make_inputs() -> dict[str, np.ndarray]:
    """The astronaut photo, random boxes, P-Net-like maps and affine matrices (x86_64 side only)."""
    import cv2
    rng = np.random.default_rng(20261206)
    image = cv2.imread(str(REPO / "examples" / "astronaut.jpg"), cv2.IMREAD_COLOR)
    small = np.ascontiguousarray(image[::3, ::3])  # an odd-sized image exercises the borders
    xy = rng.uniform(0, 400, (300, 2))
    wh = rng.uniform(5, 120, (300, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    landmarks = (rng.uniform(-6, 6, (12, 5, 2)) + TEMPLATE_112 * rng.uniform(0.5, 3.0, (12, 1, 1))
                 + rng.uniform(-40, 400, (12, 1, 2)))
    angles = rng.uniform(-np.pi, np.pi, 24)
    scales = rng.uniform(0.2, 4.0, 24)
    centres = rng.uniform(-20, 530, (24, 2))  # source points mapped to the output's centre (some near the edges)
    rotations = scales[:, None, None] * np.stack([[np.cos(angles), -np.sin(angles)],
                                                  [np.sin(angles), np.cos(angles)]]).transpose(2, 0, 1)
    shifts = 64.0 - np.einsum("kij,kj->ki", rotations, centres)
    matrices = np.concatenate([rotations, shifts[:, :, None]], axis=2)
    return {
        "image": image, "small": small, "boxes": boxes,
        "scores": rng.random(300).astype(np.float32),
        "groups": rng.integers(0, 5, 300).astype(np.int64),
        "reg": rng.normal(0, 0.1, (300, 4)).astype(np.float32),
        "landmarks": landmarks, "matrices": matrices,
        "pnet_seed": np.array([7]),
        # a gallery of int8 templates (AVX2 blocks on x86, the portable loop on Arm) and 3 probes
        "codes": rng.integers(-127, 128, (1003, 128)).astype(np.int8),
        "code_scales": rng.uniform(1e-3, 1e-2, 1003).astype(np.float32),
        "probes": rng.normal(0, 1, (3, 128)).astype(np.float32),
    }


def run_kernels(inp: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every kernel of edgeface._core once (twice where float32 and float64 paths differ)."""
    image, boxes, scores = inp["image"], inp["boxes"], inp["scores"]
    h, w = image.shape[:2]
    out: dict[str, np.ndarray] = {}
    scales = _core.pyramid_scales(h, w, min_face_size=20.0)
    out["pyramid_scales"] = np.array(scales, np.float64)
    canvas, rects = _core.pyramid(image, scales)
    out["pyramid_canvas"], out["pyramid_rects"] = canvas, rects
    rng = np.random.default_rng(int(inp["pnet_seed"][0]))
    ch, cw = (canvas.shape[-2] - 12) // 2 + 1, (canvas.shape[-1] - 12) // 2 + 1
    prob = rng.random((ch, cw)).astype(np.float32)
    reg = rng.normal(0, 0.1, (4, ch, cw)).astype(np.float32)
    out["pnet_candidates"], out["pnet_levels"] = _core.pnet_candidates(prob, reg, rects, scales, 0.95)
    out["nms_iou"] = _core.nms(boxes, scores, 0.5)
    out["nms_min"] = _core.nms(boxes, scores, 0.5, mode="min")
    out["batched_nms"] = _core.batched_nms(boxes, scores, inp["groups"], 0.3)
    out["calibrate_boxes"] = _core.calibrate_boxes(boxes, inp["reg"])
    out["square_boxes"] = _core.square_boxes(boxes)
    out["clip_boxes"] = _core.clip_boxes(boxes, w, h)
    squares = _core.square_boxes(boxes[:64])
    out["crop_resize_24"] = _core.crop_resize(image, squares, 24)
    out["crop_resize_48"] = _core.crop_resize(inp["small"], squares, 48)
    lms = inp["landmarks"]
    out["similarity_transform"] = _core.similarity_transform(lms[0], TEMPLATE_112)
    out["similarity_transforms_f32"] = _core.similarity_transforms(lms.astype(np.float32), TEMPLATE_112)
    out["warp_affine_112"] = _core.warp_affine(image, inp["matrices"], 112, 112)
    on_small = inp["matrices"] * [3.0, 3.0, 1.0]  # the same views of the 1/3-size image
    out["warp_affine_150_small"] = _core.warp_affine(inp["small"], on_small, 150, 150, border_value=7)
    out["align_faces"], out["align_faces_matrices"] = _core.align_faces(image, lms, TEMPLATE_112, 112, 112)
    out["int8_scores"] = _core.int8_scores(inp["codes"], inp["code_scales"], inp["probes"])
    out["int8_top_rows"], out["int8_top_scores"] = _core.int8_top(inp["codes"], inp["code_scales"], inp["probes"], 10)
    return out


def write(path: Path) -> int:
    inputs = make_inputs()
    outputs = run_kernels(inputs)
    np.savez_compressed(path, **{f"in_{k}": v for k, v in inputs.items()},
                        **{f"out_{k}": v for k, v in outputs.items()})
    print(f"wrote {len(outputs)} kernel outputs to {path}")
    return 0


def compare(path: Path) -> int:
    with np.load(path) as ref:
        inputs = {k[3:]: ref[k] for k in ref.files if k.startswith("in_")}
        expected = {k[4:]: ref[k] for k in ref.files if k.startswith("out_")}
    got = run_kernels(inputs)
    different = 0
    for name, want in expected.items():
        have = got[name]
        same = have.dtype == want.dtype and have.shape == want.shape and have.tobytes() == want.tobytes()
        if same:
            print(f"  identical  {name} {want.dtype}{list(want.shape)}")
            continue
        different += 1
        if have.shape == want.shape:
            diff = np.abs(have.astype(np.float64) - want.astype(np.float64))
            print(f"  DIFFERENT  {name}: {int((diff > 0).sum())} of {diff.size} values, max |diff| {diff.max():.3g}")
        else:
            print(f"  DIFFERENT  {name}: shape {have.shape} vs {want.shape}")
    print(f"{len(expected) - different} of {len(expected)} kernel outputs bit-identical to the reference")
    return 1 if different else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["write", "compare"])
    parser.add_argument("npz", type=Path)
    args = parser.parse_args(argv)
    action: Callable[[Path], int] = write if args.action == "write" else compare
    return action(args.npz)


if __name__ == "__main__":
    sys.exit(main())
