"""Runs one peer (what users would install instead of edgeface) on a list of images, each peer used
the way its README tells users to, and writes one JSON file. Runs inside bench/peers/.venv (made by
bench/peers/setup.sh); it never imports edgeface.

    python peer.py detect --peer P --images LIST.txt --threads N --out OUT.json
    python peer.py embed  --peer face_recognition --images LIST.txt --threads N --out OUT.json
    python peer.py speed  --peer P --images LIST.txt --size 640x480 --repeats 20 --threads N --out OUT.json

Peers (P): face_recognition, facenet_mtcnn, opencv_haar. LIST.txt holds one image path per line.
Formats: see bench/peers/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHIM = HERE / "torchvision_shim"  # bench-only stand-in for torchvision (facenet-pytorch imports it)
PEERS = ("face_recognition", "facenet_mtcnn", "opencv_haar")


def _set_thread_env(threads: int) -> None:
    # Must happen before numpy/torch/cv2/dlib are imported, or their pools are already sized.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def _version(dist: str) -> str | None:
    import importlib.metadata as md
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _rss_peak_mb() -> float:
    """Peak resident memory of this process image. Linux's ru_maxrss survives fork+exec (a child
    reports its parent's peak when that is higher), so VmHWM of /proc/self/status is read instead."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024.0  # kB


# ---------------------------------------------------------------------------------------------- peers
class Peer:
    name = ""
    color = "RGB"            # what the peer gets: "RGB" or "GRAY" (images are read with cv2, BGR)
    versions: dict = {}
    settings: dict = {}
    has_scores = False
    has_landmarks = False

    def prepare(self, bgr):
        import cv2
        if self.color == "GRAY":
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def detect(self, img):
        """-> (boxes [[x1,y1,x2,y2]], scores list|None, landmarks [[[x,y]*5]]|None)"""
        raise NotImplementedError


class FaceRecognitionPeer(Peer):
    """face_recognition 1.3.0 (dlib HOG detector + dlib ResNet 128-d embeddings), README usage."""
    name = "face_recognition"

    def __init__(self, threads: int):
        import warnings
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        import face_recognition
        import dlib
        self.fr = face_recognition
        self.versions = {"face_recognition": _version("face_recognition"),
                         "face-recognition-models": _version("face-recognition-models"),
                         "dlib-bin": _version("dlib-bin"), "dlib": dlib.__version__}
        self.settings = {"detector": "face_locations(img) = HOG, number_of_times_to_upsample=1",
                         "encoder": "face_encodings(img, known_face_locations=...) = model 'small' "
                                    "(5-point), num_jitters=1",
                         "distance": "euclidean", "tolerance": 0.6,
                         "threads_note": "dlib's HOG and ResNet run on one thread; --threads only "
                                         "sizes BLAS/OpenMP pools"}
        # The models load lazily inside face_recognition at import time (module globals).

    def detect(self, img):
        locs = self.fr.face_locations(img)
        return [[l, t, r, b] for (t, r, b, l) in locs], None, None

    def locations(self, img):
        return self.fr.face_locations(img)

    def encode(self, img, locs):
        return self.fr.face_encodings(img, known_face_locations=locs)


class FacenetMtcnnPeer(Peer):
    """facenet-pytorch 2.6.0 MTCNN (keep_all=True, defaults), on torch 2.13 CPU."""
    name = "facenet_mtcnn"
    has_scores = True
    has_landmarks = True

    def __init__(self, threads: int):
        import warnings
        warnings.filterwarnings("ignore", category=FutureWarning)
        if str(SHIM) not in sys.path:
            sys.path.insert(0, str(SHIM))
        import torch
        torch.set_num_threads(threads)
        from facenet_pytorch import MTCNN
        import torchvision  # the bench-only stand-in; recorded so nobody mistakes it for the real one
        self.torch = torch
        self.mtcnn = MTCNN(keep_all=True, device="cpu")
        self.versions = {"facenet-pytorch": _version("facenet-pytorch"), "torch": torch.__version__,
                         "torchvision": f"bench-only stand-in {torchvision.__version__} "
                                        f"({Path(torchvision.__file__).parent})"}
        m = self.mtcnn
        self.settings = {"call": "MTCNN(keep_all=True, device='cpu').detect(img, landmarks=True)",
                         "min_face_size": m.min_face_size, "thresholds": list(m.thresholds),
                         "factor": m.factor, "select_largest": m.select_largest,
                         "torch_threads": torch.get_num_threads()}

    def detect(self, img):
        import numpy as np
        boxes, probs, points = self.mtcnn.detect(img, landmarks=True)
        if boxes is None:
            return [], [], []
        # With NumPy 2 facenet-pytorch hands back object arrays: make them plain floats.
        boxes = np.asarray(boxes.tolist(), dtype=np.float64).reshape(-1, 4)
        probs = np.asarray(probs.tolist(), dtype=np.float64).reshape(-1)
        points = np.asarray(points.tolist(), dtype=np.float64).reshape(-1, 5, 2)
        return boxes.tolist(), probs.tolist(), points.tolist()


class OpencvHaarPeer(Peer):
    """OpenCV's Haar cascade haarcascade_frontalface_default.xml, as OpenCV's tutorial calls it."""
    name = "opencv_haar"
    color = "GRAY"

    def __init__(self, threads: int):
        import cv2
        cv2.setNumThreads(threads)
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"cannot load {path}")
        self.versions = {"opencv-python-headless": _version("opencv-python-headless"),
                         "cv2": cv2.__version__}
        self.settings = {"cascade": "haarcascade_frontalface_default.xml",
                         "call": "detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, "
                                 "minSize=(20, 20))",
                         "cv2_threads": cv2.getNumThreads()}

    def detect(self, img):
        faces = self.cascade.detectMultiScale(img, scaleFactor=1.1, minNeighbors=5, minSize=(20, 20))
        return [[int(x), int(y), int(x + w), int(y + h)] for (x, y, w, h) in faces], None, None


def make_peer(name: str, threads: int) -> Peer:
    import cv2
    cv2.setNumThreads(threads)  # cv2 is also used around every peer (imread, resize, colour)
    return {"face_recognition": FaceRecognitionPeer, "facenet_mtcnn": FacenetMtcnnPeer,
            "opencv_haar": OpencvHaarPeer}[name](threads)


# ------------------------------------------------------------------------------------------ helpers
def read_list(path: str) -> list[str]:
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def imread(path: str):
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return img


def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def resize(bgr, size):
    import cv2
    if size is None:
        return bgr
    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)


def header(command: str, peer: Peer, args, load_seconds: float) -> dict:
    return {"command": command, "peer": peer.name, "threads": args.threads,
            "versions": {"python": sys.version.split()[0], **peer.versions},
            "settings": peer.settings, "input": peer.color, "load_seconds": round(load_seconds, 4)}


def write(out: str, data: dict) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(out) + ".part")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(out)


def load_peer(args) -> tuple[Peer, float]:
    t0 = time.perf_counter()
    peer = make_peer(args.peer, args.threads)
    return peer, time.perf_counter() - t0


# ----------------------------------------------------------------------------------------- commands
def cmd_detect(args) -> None:
    peer, load_s = load_peer(args)
    results, total, n_faces = [], 0.0, 0
    for path in read_list(args.images):
        entry = {"path": path}
        try:
            bgr = imread(path)
        except FileNotFoundError as exc:
            entry.update(error=str(exc), boxes=[], scores=None, landmarks=None, seconds=None)
            results.append(entry)
            continue
        img = peer.prepare(bgr)
        t0 = time.perf_counter()
        boxes, scores, landmarks = peer.detect(img)
        dt = time.perf_counter() - t0
        total += dt
        n_faces += len(boxes)
        entry.update(width=int(bgr.shape[1]), height=int(bgr.shape[0]), boxes=boxes,
                     scores=scores if peer.has_scores else None,
                     landmarks=landmarks if peer.has_landmarks else None, seconds=round(dt, 6))
        results.append(entry)
    data = header("detect", peer, args, load_s)
    data.update(box_format="[x1, y1, x2, y2] pixels of the original image",
                landmark_format="5 x [x, y]: left eye, right eye, nose, left mouth, right mouth "
                                "(image left/right as MTCNN orders them)" if peer.has_landmarks else None,
                images=results, total_seconds=round(total, 4))
    write(args.out, data)
    n = sum(1 for r in results if r.get("seconds") is not None)
    print(f"detect {peer.name}: {n} images, {n_faces} faces, {1000 * total / max(n, 1):.1f} ms/image "
          f"mean, load {load_s:.2f} s -> {args.out}")


def _nearest_centre(locs, width, height):
    cx, cy = width / 2.0, height / 2.0
    return min(locs, key=lambda l: (((l[3] + l[1]) / 2 - cx) ** 2 + ((l[0] + l[2]) / 2 - cy) ** 2))


def cmd_embed(args) -> None:
    if args.peer != "face_recognition":
        sys.exit("embed: only --peer face_recognition gives embeddings")
    peer, load_s = load_peer(args)
    results, found, t_det, t_enc = [], 0, 0.0, 0.0
    for path in read_list(args.images):
        entry = {"path": path}
        try:
            bgr = imread(path)
        except FileNotFoundError as exc:
            entry.update(error=str(exc), encoding=None, box=None, n_faces=0,
                         detect_seconds=None, encode_seconds=None)
            results.append(entry)
            continue
        img = peer.prepare(bgr)
        t0 = time.perf_counter()
        locs = peer.locations(img)
        dt = time.perf_counter() - t0
        t_det += dt
        entry.update(n_faces=len(locs), detect_seconds=round(dt, 6))
        if not locs:
            entry.update(encoding=None, box=None, encode_seconds=None)
        else:
            loc = _nearest_centre(locs, img.shape[1], img.shape[0])
            t0 = time.perf_counter()
            enc = peer.encode(img, [loc])[0]
            de = time.perf_counter() - t0
            t_enc += de
            found += 1
            t, r, b, l = loc
            entry.update(encoding=[float(v) for v in enc], box=[l, t, r, b], encode_seconds=round(de, 6))
        results.append(entry)
    data = header("embed", peer, args, load_s)
    data.update(dims=128, distance="euclidean", tolerance=0.6,
                choice="face whose box centre is nearest the image centre",
                box_format="[x1, y1, x2, y2]", images=results)
    write(args.out, data)
    n = len(results)
    print(f"embed {peer.name}: {found}/{n} images with a face, detect {1000 * t_det / max(n, 1):.1f} "
          f"ms/image, encode {1000 * t_enc / max(found, 1):.1f} ms/face -> {args.out}")


def _cold_child(args) -> None:
    """Fresh process: imports, model load, first frame; prints one JSON line."""
    import psutil
    t_import0 = time.perf_counter()
    import cv2  # noqa: F401
    import numpy  # noqa: F401
    peer, load_s = load_peer(args)
    img = peer.prepare(resize(imread(args.image), parse_size(args.size) if args.size else None))
    t0 = time.perf_counter()
    boxes, _, _ = peer.detect(img)
    first = time.perf_counter() - t0
    if peer.name == "face_recognition" and boxes:
        t1 = time.perf_counter()
        peer.encode(img, [(b[1], b[2], b[3], b[0]) for b in boxes[:1]])
        first_enc = time.perf_counter() - t1
    else:
        first_enc = None
    total = time.time() - psutil.Process().create_time()
    print(json.dumps({"cold_start_seconds": round(total, 3),
                      "imports_and_load_seconds": round(time.perf_counter() - t_import0 - first
                                                        - (first_enc or 0), 3),
                      "model_load_seconds": round(load_s, 3), "first_frame_seconds": round(first, 4),
                      "first_encoding_seconds": None if first_enc is None else round(first_enc, 4),
                      "peak_rss_mb": round(_rss_peak_mb(), 1)}))


def cold_start(args, image: str, runs: int) -> dict:
    out = []
    for _ in range(runs):
        cmd = [sys.executable, str(Path(__file__).resolve()), "_cold", "--peer", args.peer,
               "--image", image, "--threads", str(args.threads)]
        if args.size:
            cmd += ["--size", args.size]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        rec = json.loads(proc.stdout.strip().splitlines()[-1])
        rec["wall_seconds_incl_exit"] = round(wall, 3)
        out.append(rec)
    return {"runs": out,
            "median_seconds": round(statistics.median(r["cold_start_seconds"] for r in out), 3),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in out),
            "definition": "seconds from process start (psutil create_time) through interpreter start, "
                          "imports, model load and the first frame's detection, in a fresh subprocess"}


def cmd_speed(args) -> None:
    images = read_list(args.images)
    size = parse_size(args.size) if args.size else None
    cold = cold_start(args, images[0], args.cold_runs) if args.cold_runs > 0 else None
    peer, load_s = load_peer(args)
    frames = [peer.prepare(resize(imread(p), size)) for p in images]
    for _ in range(args.warmup):
        peer.detect(frames[0])
    is_fr = peer.name == "face_recognition"
    det_ms, det_cpu_ms, enc_ms_per_face, faces_per_frame, e2e_ms = [], [], [], [], []
    enc_repeats = args.repeats if args.encode_repeats is None else min(args.encode_repeats, args.repeats)
    for rep in range(args.repeats):
        for img in frames:
            c0, t0 = time.process_time(), time.perf_counter()
            boxes, _, _ = peer.detect(img)
            det_ms.append(1000 * (time.perf_counter() - t0))
            det_cpu_ms.append(1000 * (time.process_time() - c0))
            faces_per_frame.append(len(boxes))
            if is_fr and boxes and rep < enc_repeats:
                locs = [(b[1], b[2], b[3], b[0]) for b in boxes]
                t0 = time.perf_counter()
                peer.encode(img, locs)
                enc_ms = 1000 * (time.perf_counter() - t0)
                enc_ms_per_face.append(enc_ms / len(locs))
                e2e_ms.append(det_ms[-1] + enc_ms)
    data = header("speed", peer, args, load_s)
    q = statistics.quantiles(det_ms, n=10) if len(det_ms) > 1 else [det_ms[0]] * 9
    data.update(
        size=list(size) if size else None, resize="cv2.INTER_AREA from the BGR image, then colour "
                                                  "conversion; both outside the timed call",
        images=len(images), repeats=args.repeats, warmup_calls=args.warmup,
        frames_timed=len(det_ms),
        detect_ms={"median": round(statistics.median(det_ms), 3), "mean": round(statistics.fmean(det_ms), 3),
                   "p10": round(q[0], 3), "p90": round(q[-1], 3), "min": round(min(det_ms), 3),
                   "max": round(max(det_ms), 3)},
        detect_cpu_ms={"median": round(statistics.median(det_cpu_ms), 3),
                       "note": "process CPU time (all threads) per frame: on a shared machine, with 1 "
                               "thread, close to what an idle machine's wall time would be"},
        faces_per_frame_mean=round(statistics.fmean(faces_per_frame), 3),
        encode_ms_per_face=None if not is_fr else {
            "median": round(statistics.median(enc_ms_per_face), 3) if enc_ms_per_face else None,
            "mean": round(statistics.fmean(enc_ms_per_face), 3) if enc_ms_per_face else None,
            "frames_with_faces": len(enc_ms_per_face), "encode_repeats": enc_repeats,
            "definition": "face_encodings(img, known_face_locations=all faces found) time / faces"},
        end_to_end_ms=None if not (is_fr and e2e_ms) else {
            "median": round(statistics.median(e2e_ms), 3), "frames": len(e2e_ms),
            "definition": "face_locations + face_encodings of every face found, per frame with >= 1 face"},
        cold_start=cold,
        peak_rss_mb=round(_rss_peak_mb(), 1),
        peak_rss_note="this process after all timed frames (holds the resized frames too); "
                      "cold_start.peak_rss_mb is a fresh process after one frame",
    )
    write(args.out, data)
    enc = ""
    if is_fr and enc_ms_per_face:
        enc = f", encode {statistics.median(enc_ms_per_face):.1f} ms/face"
    cs = f", cold start {cold['median_seconds']:.2f} s" if cold else ""
    print(f"speed {peer.name} {args.size or 'native'} threads={args.threads}: detect "
          f"{statistics.median(det_ms):.1f} ms/frame median over {len(det_ms)} (CPU "
          f"{statistics.median(det_cpu_ms):.1f} ms){enc}{cs}, peak RSS "
          f"{_rss_peak_mb():.0f} MB -> {args.out}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("detect", "embed", "speed", "_cold"):
        p = sub.add_parser(name)
        p.add_argument("--peer", required=True, choices=PEERS)
        p.add_argument("--threads", type=int, default=1)
        if name == "_cold":
            p.add_argument("--image", required=True)
            p.add_argument("--size")
            continue
        p.add_argument("--images", required=True, help="text file, one image path per line")
        p.add_argument("--out", required=True, help="JSON file to write")
        if name == "speed":
            p.add_argument("--size", help="WxH every image is resized to (cv2.INTER_AREA); "
                                          "omit for native size")
            p.add_argument("--repeats", type=int, default=20)
            p.add_argument("--warmup", type=int, default=3)
            p.add_argument("--encode-repeats", type=int, default=None,
                           help="face_recognition: time the encodings in only the first N repeats "
                                "(default: all); encoding every face of crowd photos is slow")
            p.add_argument("--cold-runs", type=int, default=3,
                           help="fresh subprocesses for the cold start (median reported); 0 = skip")
    args = ap.parse_args(argv)
    _set_thread_env(args.threads)
    {"detect": cmd_detect, "embed": cmd_embed, "speed": cmd_speed, "_cold": _cold_child}[args.command](args)


if __name__ == "__main__":
    main()
