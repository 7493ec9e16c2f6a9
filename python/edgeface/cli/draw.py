"""``--draw OUT``: annotated copies of the inputs, mirroring their folder tree under OUT."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import InvalidArgumentError
from ..faces import Face
from ..gallery import Identity

# BGR. Green: a known person; red: a face the gallery does not know; amber: detection only.
KNOWN_COLOR = (60, 180, 60)
UNKNOWN_COLOR = (40, 40, 220)
DETECTED_COLOR = (0, 170, 255)
LANDMARK_COLOR = (255, 80, 0)


def face_color(identity: Optional[Identity]) -> tuple[int, int, int]:
    if identity is None:
        return DETECTED_COLOR
    return KNOWN_COLOR if identity.known else UNKNOWN_COLOR


def face_label(face: Face, identity: Optional[Identity]) -> str:
    if identity is None:
        return f"{face.score:.2f}"
    return f"{identity.name or 'unknown'} {identity.score:.2f}"


def draw_faces(image: np.ndarray, faces: Sequence[Face],
               identities: Optional[Sequence[Identity]] = None) -> np.ndarray:
    """A copy of ``image`` with each face's box, landmarks and label; sizes scale with the image."""
    import cv2
    canvas = image.copy()
    side = min(canvas.shape[:2])
    line = max(2, round(side / 400))
    font_scale = max(0.5, side / 900)
    text_thickness = max(1, round(font_scale * 1.5))
    for i, face in enumerate(faces):
        identity = identities[i] if identities is not None else None
        color = face_color(identity)
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, line)
        for x, y in face.landmarks:
            cv2.circle(canvas, (int(round(x)), int(round(y))), line + 1, LANDMARK_COLOR, -1)
        label = face_label(face, identity)
        (tw, th), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, text_thickness)
        pad = max(2, th // 4)
        # Above the box when there is room, else inside its top edge; always on a filled background.
        top = y1 - th - baseline - 2 * pad if y1 - th - baseline - 2 * pad >= 0 else y1
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 2 * pad, top + th + baseline + 2 * pad), color, -1)
        cv2.putText(canvas, label, (x1 + pad, top + pad + th), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (255, 255, 255), text_thickness, cv2.LINE_AA)
    return canvas


def check_out_dir(out: str) -> Optional[str]:
    """The usage problem with ``--draw OUT``, or None."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        return f"--draw {out}: exists and is not a folder; give a folder for the annotated copies"
    return None


def plan_outputs(paths: Sequence[Path], out: str) -> dict[Path, Path]:
    """Input image → annotated copy: the inputs' tree below their common folder, mirrored under OUT.

    ``a/x.jpg`` and ``b/x.png`` become ``OUT/a/x.jpg`` and ``OUT/b/x.png``; one file keeps its name.
    Distinct inputs always get distinct outputs, with their own extension (and so their own format).
    """
    if not paths:
        return {}
    absolute = [Path(os.path.abspath(p)) for p in paths]
    root = Path(os.path.commonpath([str(p.parent) for p in absolute]))
    plan = {}
    for given, full in zip(paths, absolute):
        relative = full.relative_to(root)
        if not relative.suffix:
            relative = relative.with_name(relative.name + ".jpg")
        plan[given] = Path(out) / relative
    return plan


def make_folders(out: Path, target: Path) -> None:
    """Create the folders from OUT down to ``target``'s, refusing to go through a symbolic link."""
    current = out
    for part in target.parent.relative_to(out).parts:
        current = current / part
        if current.is_symlink():
            raise InvalidArgumentError(f"{current} is a symbolic link; not writing through it")
        current.mkdir(exist_ok=True)


def write_drawing(source: Path, target: Path, out: str, canvas: np.ndarray, overwrite: bool) -> None:
    """Write one annotated copy safely: never onto its input, never over a file unless ``overwrite``."""
    from ..image_io import write_image_atomic
    if target.exists() and target.resolve() == source.resolve():
        raise InvalidArgumentError(f"{target} is the input image itself; choose another --draw folder")
    if not overwrite and os.path.lexists(target):
        raise InvalidArgumentError(f"{target} already exists; not overwriting it (pass --overwrite to replace it)")
    out_root = Path(out)
    out_root.mkdir(parents=True, exist_ok=True)
    make_folders(out_root, target)
    write_image_atomic(target, canvas, overwrite=overwrite)
