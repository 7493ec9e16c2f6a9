"""The one-call API and the frame loop a camera firmware would run."""
from __future__ import annotations

import numpy as np
import pytest

import edgeface


def test_analyze_with_gallery(analyzer, astronaut, tmp_path):
    result = analyzer.analyze(astronaut)
    assert len(result) == 1 and result.identities is None
    with analyzer.open_gallery(tmp_path / "g.db") as gallery:
        gallery.enroll("eileen", result.embeddings)
        analyzer.gallery = gallery
        try:
            again = analyzer.analyze(np.ascontiguousarray(astronaut[:, ::-1]))
        finally:
            analyzer.gallery = None
    (face,) = list(again)
    assert face.identity.name == "eileen" and face.to_dict()["identity"] == "eileen"


def resident_kib() -> int:
    # The current resident set, not the peak: an earlier test's peak would hide growth here.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_stream_does_not_grow_memory(analyzer, astronaut):
    frames = (astronaut if i % 2 else np.ascontiguousarray(astronaut[:, ::-1]) for i in range(400))
    rss = []
    for i, result in enumerate(analyzer.stream(frames)):
        assert len(result) == 1
        if i in (100, 399):
            rss.append(resident_kib())
    assert rss[1] - rss[0] < 20_000, f"resident memory grew by {rss[1] - rss[0]} KiB over 300 frames"


def test_verify_and_embed_largest(analyzer, astronaut):
    result = analyzer.verify(astronaut, np.ascontiguousarray(astronaut[:, ::-1]))
    assert result.same and result.score > 0.9
    assert analyzer.verify(astronaut, np.zeros((100, 100, 3), np.uint8)) is None
    assert analyzer.embed_largest(np.zeros((64, 64, 3), np.uint8)) == (None, None)


def test_bad_operating_point_and_color():
    with pytest.raises(edgeface.InvalidArgumentError):
        edgeface.FaceAnalyzer(operating_point="far_0.5")
    with pytest.raises(edgeface.InvalidArgumentError):
        edgeface.detect(np.zeros((10, 10, 3), np.uint8), color="yuv")


def test_foreign_gallery_refused_by_analyzer(analyzer, tmp_path):
    from edgeface.gallery import Gallery
    Gallery(tmp_path / "other.db", "some-other-model", 512).close()
    with pytest.raises(edgeface.GalleryModelMismatchError):
        analyzer.open_gallery(tmp_path / "other.db")
