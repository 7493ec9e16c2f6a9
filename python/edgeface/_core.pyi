"""Typed stub of ``edgeface._core``, the C++ kernels of the detect -> align pipeline.

Conventions shared by every function:

* Arrays are checked, never silently cast: a wrong dtype raises
  :class:`~edgeface.errors.InvalidDTypeError` (a ``TypeError``), a wrong shape/size/value
  raises :class:`~edgeface.errors.InvalidArgumentError` (a ``ValueError``), an unusable image
  raises :class:`~edgeface.errors.ImageError` (a ``ValueError``). Messages name the argument
  and give the expected vs the actual dtype/shape/value.
* C-contiguous inputs are used in place (zero copy). An input of the right dtype that is not
  C-contiguous (e.g. ``img[:, :, ::-1]`` or a column slice) is copied once into contiguous
  memory first; results are identical.
* Images are ``uint8`` arrays of shape ``(H, W, 3)`` (BGR as read by OpenCV unless stated),
  non-empty, with ``H, W <= 32768`` and ``H * W <= 2**28``; anything else -> ``ImageError``
  (checked from the shape alone, before any copy). A non-array image -> ``InvalidDTypeError``.
* String arguments (``mode``) must be ``str`` encodable as UTF-8: a lone surrogate raises
  ``InvalidArgumentError``.
* Boxes are ``float32`` ``(K, 4)`` rows ``(x1, y1, x2, y2)`` in continuous pixel coordinates;
  NaN/inf values are rejected with ``InvalidArgumentError``.
* The GIL is released during computation, so several Python threads can run kernels in
  parallel. Each call is single-threaded. Outputs are newly allocated arrays.
"""
from __future__ import annotations

from typing import Literal, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_F32 = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]
_I32 = npt.NDArray[np.int32]
_I64 = npt.NDArray[np.int64]
_U8 = npt.NDArray[np.uint8]
_Real = Union[npt.NDArray[np.float32], npt.NDArray[np.float64]]
_Scales = Union[Sequence[float], npt.NDArray[np.floating]]

def nms(
    boxes: _F32, scores: _F32, threshold: float, mode: Literal["iou", "min"] = "iou"
) -> _I64:
    """Greedy non-maximum suppression.

    Args:
        boxes: float32 ``(N, 4)`` ``(x1, y1, x2, y2)``, finite, ``x2 >= x1`` and ``y2 >= y1``.
            Area is ``(x2 - x1) * (y2 - y1)`` (continuous coordinates, no ``+1``).
        scores: float32 ``(N,)``, finite.
        threshold: in ``[0, 1]``. A box is suppressed by a kept box when their overlap is
            strictly greater than ``threshold`` (so ``1.0`` suppresses nothing).
        mode: ``"iou"`` (intersection over union) or ``"min"`` (intersection over the smaller
            area, MTCNN's "Min"). Zero-area pairs have overlap 0.

    Returns:
        int64 ``(K,)`` indices of the kept boxes in descending score order; equal scores keep
        the lower index first (stable). ``N == 0`` gives an empty array.

    Raises:
        InvalidDTypeError: boxes/scores not float32, threshold not a number, mode not a str.
        InvalidArgumentError: bad shapes, NaN/inf, inverted boxes, threshold outside [0, 1],
            unknown mode.
    """

def batched_nms(
    boxes: _F32,
    scores: _F32,
    groups: Union[_I32, _I64],
    threshold: float,
    mode: Literal["iou", "min"] = "iou",
) -> _I64:
    """:func:`nms` run independently within each group id (boxes of different groups never
    suppress each other). ``groups`` is int32 or int64 ``(N,)``; any values. Cost is
    ``O(sum n_g^2)`` in the worst case. Returns int64 indices sorted by descending score
    (ties: lower index first)."""

def pyramid_scales(
    height: int,
    width: int,
    min_face_size: float = 20.0,
    factor: float = 0.709,
    max_levels: int = 32,
    min_size: int = 12,
) -> list[float]:
    """MTCNN pyramid scales for an image of ``height x width``.

    The first scale is ``m = min_size / min_face_size`` (greater than 1 when
    ``min_face_size < min_size``: tiny faces are found on upscaled levels), then
    ``m * factor**k`` while ``min(height, width) * scale >= min_size``, at most ``max_levels``
    entries. An image too small for even the first level gives ``[]`` (not an error).

    Raises:
        InvalidArgumentError: height/width not in [1, 32768], min_face_size <= 0 or not
            finite, factor not in (0, 1), max_levels not in [0, 1000], min_size not in
            [1, 32768].
        InvalidDTypeError: a non-integer size or a non-numeric argument.
    """

def pyramid(
    image: _U8,
    scales: _Scales,
    swap_rb: bool = True,
    mean: float = 127.5,
    scale: float = 0.0078125,
) -> Tuple[_F32, _I32]:
    """All pyramid levels, resized and normalized, packed into ONE channel-first canvas so that
    P-Net (fully convolutional, stride 2, 12x12 window) runs once on the whole pyramid.

    Level ``l`` has size ``(h_l, w_l) = (ceil(H * s_l), ceil(W * s_l))`` and is resampled
    with the sampling of ``cv2.resize(image, (w_l, h_l), interpolation=cv2.INTER_LINEAR)``
    (bilinear, pixel-centre aligned, ratio ``W / w_l``, border replicated), computed in float
    (cv2 rounds to uint8: values agree within 1 grey level), then ``(v - mean) * scale``.
    ``swap_rb=True`` means the input is BGR and the planes are written in RGB order.

    Packing: levels are placed largest first, each at the free corner position (right of or
    below a placed level) that least grows the canvas; every level's ``x`` and ``y`` are
    even (P-Net's stride-2 grid lines up with each level's own grid), levels never overlap
    and are separated by at least 2 px. Gaps are 0.0 (the normalized value of grey,
    whatever ``mean``/``scale``). Typical canvas area is ~1.17x the sum of level areas.

    Args:
        image: uint8 ``(H, W, 3)``.
        scales: sequence (or 1-D numeric array) of finite scales > 0, usually from
            :func:`pyramid_scales`. Empty -> canvas ``(3, 0, 0)``.
        swap_rb: bool (or numpy bool).
        mean, scale: finite normalization constants.

    Returns:
        ``(canvas, rects)``: float32 ``(3, Hc, Wc)`` and int32 ``(L, 4)`` rows
        ``(x, y, w_l, h_l)`` in the order of ``scales``.

    Raises:
        ImageError: bad image. InvalidArgumentError: a scale <= 0 / non-finite, a level
        larger than 32768 px, or a canvas above 2**28 elements.
    """

def pnet_candidates(
    prob: _F32,
    reg: _F32,
    rects: _I32,
    scales: _Scales,
    threshold: float,
    stride: int = 2,
    cell: int = 12,
) -> Tuple[_F32, _I32]:
    """Maps P-Net outputs on a :func:`pyramid` canvas to candidate boxes in ORIGINAL image
    coordinates.

    Output cell ``(i, j)`` sees the canvas window ``x in [stride*j, stride*j + cell)``,
    ``y in [stride*i, stride*i + cell)``. It belongs to level ``l`` only if that whole window
    lies inside ``rects[l]``; cells in gaps or straddling levels are ignored. For a cell of
    level ``l`` with ``prob > threshold`` and in-level coordinates
    ``ci = (stride*i - y_l) / stride``, ``cj = (stride*j - x_l) / stride``, the box is
    ``((stride*cj + 1) / s, (stride*ci + 1) / s, (stride*cj + cell) / s, (stride*ci + cell) / s)``
    with ``s = scales[l]`` (facenet-pytorch ``generateBoundingBox``).

    Args:
        prob: float32 ``(Hc', Wc')`` face probability map.
        reg: float32 ``(4, Hc', Wc')`` regression maps.
        rects: int32 ``(L, 4)`` from :func:`pyramid`; ``x``, ``y`` multiples of ``stride``.
        scales: ``L`` scales (the ones given to :func:`pyramid`).
        threshold: finite; strict ``>`` comparison.

    Returns:
        ``(rows, levels)``: float32 ``(K, 9)`` rows ``[x1, y1, x2, y2, score, reg0..reg3]`` and
        int32 ``(K,)`` level ids; ordered by level, then map row, then map column.

    Raises:
        InvalidArgumentError: shapes disagree, ``len(scales) != L``, a rect outside the area
            covered by the map, misaligned or negative rects, NaN/inf in ``prob`` (inside
            levels) or in ``reg`` of a kept cell.
    """

def calibrate_boxes(boxes: _F32, reg: _F32) -> _F32:
    """Bounding-box regression (facenet-pytorch ``bbreg``): with ``w = x2 - x1 + 1`` and
    ``h = y2 - y1 + 1``: ``x1 += reg0*w, y1 += reg1*h, x2 += reg2*w, y2 += reg3*h``.
    ``boxes`` and ``reg`` are float32 ``(K, 4)``, finite. Returns float32 ``(K, 4)``."""

def square_boxes(boxes: _F32) -> _F32:
    """MTCNN ``rerec``: with ``w = x2 - x1``, ``h = y2 - y1``, ``l = max(w, h)``, keeps the centre:
    ``x1 += w/2 - l/2``, ``y1 += h/2 - l/2``, ``x2 = x1 + l``, ``y2 = y1 + l``.
    float32 ``(K, 4)`` in and out."""

def clip_boxes(boxes: _F32, width: int, height: int) -> _F32:
    """Clips x to ``[0, width]`` and y to ``[0, height]`` (continuous coordinates: the right
    edge of the last pixel is ``width``). ``width``/``height`` in [1, 32768]."""

def crop_resize(
    image: _U8,
    boxes: _F32,
    size: int,
    swap_rb: bool = True,
    mean: float = 127.5,
    scale: float = 0.0078125,
) -> _F32:
    """Batched crop-and-resize for R-Net (``size=24``) / O-Net (``size=48``).

    Each box ``(x1, y1, x2, y2)`` (continuous pixel coordinates, ``x2 >= x1``, ``y2 >= y1``) is
    resampled bilinearly to ``size x size``: output pixel centre ``u + 0.5`` maps to source
    position ``x1 + (u + 0.5) * (x2 - x1) / size - 0.5``, clamped to ``[x1, x2 - 1]`` (the
    border replication of ``cv2.resize`` applied to the cropped patch), same for y. Source
    pixels outside the image read 0 (black) before normalization (MTCNN's zero padding), so
    boxes partly or fully outside the image are fine. For integer boxes this equals: pad the
    image with zeros, crop the box, ``cv2.resize(..., INTER_LINEAR)`` (within 1 grey level).
    Then ``(v - mean) * scale``; ``swap_rb`` as in :func:`pyramid`.

    Returns:
        float32 ``(K, 3, size, size)``. ``size`` in [1, 4096].
    """

def similarity_transform(src: _Real, dst: _Real) -> _F64:
    """Least-squares similarity (rotation + uniform scale + translation) mapping ``src`` onto
    ``dst`` (Umeyama 1991, with the reflection guard: the result never mirrors). Computed in
    float64 with the closed form of the 2-D case, which equals the SVD solution.

    Args:
        src, dst: float32 or float64 ``(N, 2)``, ``N >= 2``, finite.

    Returns:
        float64 ``(2, 3)`` ``[[a, -b, tx], [b, a, ty]]`` (source -> destination, usable with
        :func:`warp_affine` and ``cv2.warpAffine``).

    Raises:
        InvalidArgumentError: degenerate ``src`` (all points identical / zero variance),
            a zero-scale result (degenerate ``dst``), NaN/inf, mismatched shapes.
    """

def similarity_transforms(src: _Real, dst: _Real) -> _F64:
    """Batched :func:`similarity_transform`: ``src`` float32/float64 ``(K, N, 2)`` (landmarks
    of K faces) onto one template ``dst`` ``(N, 2)``. Returns float64 ``(K, 2, 3)``. A
    degenerate face raises ``InvalidArgumentError`` naming its index (``src[k]``)."""

def warp_affine(
    image: _U8,
    matrices: _Real,
    out_height: int,
    out_width: int,
    border_value: int = 0,
) -> _U8:
    """Bilinear affine warps of one image, one per matrix.

    ``matrices`` float32/float64 ``(K, 2, 3)`` map SOURCE -> DESTINATION coordinates (like
    ``cv2.warpAffine`` without ``WARP_INVERSE_MAP``); they are inverted inside. Destination
    pixel ``(x, y)`` samples the source at ``M^-1 (x, y)`` (integer pixel coordinates),
    bilinear, constant border ``border_value`` (0..255, all channels) for taps outside the
    image. Matches ``cv2.warpAffine(INTER_LINEAR, BORDER_CONSTANT)`` within 1 grey level.
    ``out_height``/``out_width`` in [1, 8192].

    Returns:
        uint8 ``(K, out_height, out_width, 3)``, channel order unchanged.

    Raises:
        InvalidArgumentError: non-invertible or non-finite matrix, bad sizes.
    """

def align_faces(
    image: _U8,
    landmarks: _Real,
    template: _Real,
    out_height: int,
    out_width: int,
    border_value: int = 0,
) -> Tuple[_U8, _F64]:
    """:func:`similarity_transforms` of ``landmarks`` (float32/float64 ``(K, N, 2)``, e.g. the
    5 MTCNN points) onto ``template`` (``(N, 2)``, in output pixel coordinates) followed by
    :func:`warp_affine`, in one GIL-free call.

    Returns:
        ``(crops, matrices)``: uint8 ``(K, out_height, out_width, 3)`` and float64
        ``(K, 2, 3)``.
    """

def int8_scores(
    codes: npt.NDArray[np.int8], scales: _F32, probes: _F32, threads: int = 0
) -> _F32:
    """Gallery search over int8 templates: (Q, N) scores = scales * (probes @ codes.T); threads=0: every core."""
