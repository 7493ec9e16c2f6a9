"""face_recognition encodings at given boxes (no detection): for bench/robustness.py, which occludes
a face after detection and asks each system to embed the face where it was found on the clean image.
Runs in bench/peers/.venv; never imports edgeface.

    $PY bench/peers/encode_at.py --jobs JOBS.json --out OUT.json
    JOBS.json: [{"path": "...", "box": [x1, y1, x2, y2]}, ...]   (boxes from `peer.py embed` on clean images)
    OUT.json:  {"encodings": [[128 floats] | null, ...], "settings": {...}}
"""
from __future__ import annotations

import argparse
import json
import os
import warnings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    import cv2
    import face_recognition
    jobs = json.load(open(args.jobs))
    encodings = []
    for job in jobs:
        bgr = cv2.imread(job["path"], cv2.IMREAD_COLOR)
        if bgr is None or job["box"] is None:
            encodings.append(None)
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in job["box"])
        enc = face_recognition.face_encodings(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                                              known_face_locations=[(y1, x2, y2, x1)])
        encodings.append([float(v) for v in enc[0]] if enc else None)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"encodings": encodings, "settings": {
            "encoder": "face_encodings(img, known_face_locations=[box]) = model 'small' (5-point), num_jitters=1"}}, f)
    os.replace(tmp, args.out)
    print(f"encode_at: {sum(e is not None for e in encodings)}/{len(jobs)} encoded -> {args.out}")


if __name__ == "__main__":
    main()
