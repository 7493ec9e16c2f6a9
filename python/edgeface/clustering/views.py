"""Committee views: the embeddings edgeface can compute for one face, each a different "opinion".

A view is an embedding model (by manifest name) applied to the aligned crop or to its mirror image.
Views whose model is not in the manifest (e.g. MobileFaceNet before the user imported it) are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from ..alignment import align
from ..embedding import Embedder
from ..errors import InvalidArgumentError
from ..faces import Detections
from ..image_io import check_color, validate_array
from ..models import get_model, list_models

FLIP_SUFFIX = "+flip"


@dataclass(frozen=True)
class View:
    model: str
    flip: bool = False

    @property
    def name(self) -> str:
        return self.model + (FLIP_SUFFIX if self.flip else "")

    @classmethod
    def parse(cls, name: str) -> "View":
        """``"dlib_resnet_v1+flip"`` → ``View("dlib_resnet_v1", flip=True)``."""
        if name.endswith(FLIP_SUFFIX):
            return cls(name[: -len(FLIP_SUFFIX)], True)
        return cls(name)


def available_views(names: Iterable[str]) -> list[str]:
    """The view names among ``names`` whose embedding model is installed (in the manifest, file present:
    the fp32 dlib model is not in the wheel)."""
    installed = {n for n in list_models() if get_model(n).path.is_file()}
    return [n for n in names if View.parse(n).model in installed]


class Committee:
    """Embeds faces once per view; models shared by several views (plain and flipped) load once."""

    def __init__(self, views: Sequence[str], backend: Optional[str] = None, threads: Optional[int] = None) -> None:
        if not views:
            raise InvalidArgumentError("a committee needs at least one view")
        self.views = [View.parse(v) for v in views]
        self.embedders: dict[str, Embedder] = {}
        try:
            for view in self.views:
                if view.model not in self.embedders:
                    get_model(view.model)  # a clear ModelError for an unknown name before loading anything
                    self.embedders[view.model] = Embedder(view.model, backend, threads)
        except BaseException:
            self.close()
            raise

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.views]

    def embed(self, image: np.ndarray, faces: Union[Detections, np.ndarray], color: str = "bgr") -> dict[str, np.ndarray]:
        """Every view's unit-length embeddings of ``faces`` in ``image``: {view name: K×D float32}."""
        order = check_color(color)
        validate_array(image)
        crops: dict[tuple[float, ...], np.ndarray] = {}  # one alignment per template, shared by models
        out: dict[str, np.ndarray] = {}
        for view in self.views:
            embedder = self.embedders[view.model]
            key = tuple(np.asarray(embedder.spec.alignment, np.float64).ravel()) + tuple(embedder.spec.input.size)
            if key not in crops:
                crops[key] = align(image, faces, embedder.spec)
            batch = crops[key][:, :, ::-1] if view.flip else crops[key]
            out[view.name] = embedder.embed_aligned(np.ascontiguousarray(batch), order)
        return out

    def close(self) -> None:
        for embedder in self.embedders.values():
            embedder.close()
        self.embedders = {}

    def __enter__(self) -> "Committee":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
