"""Verification thresholds are tied to the detectors whose landmarks they were calibrated (or checked) with."""
from __future__ import annotations

import dataclasses

import pytest

from edgeface.detection import DETECTORS, create_detector, detector_name
from edgeface.errors import ModelError
from edgeface.matching import threshold_for
from edgeface.models import default_model


def test_threshold_for_refuses_another_detectors_calibration():
    spec = dataclasses.replace(default_model("embedder"), thresholds_detectors=("mtcnn",))
    value = threshold_for(spec, "far_1e-3", "mtcnn")
    assert value == threshold_for(spec, "far_1e-3") == spec.thresholds["far_1e-3"]
    with pytest.raises(ModelError, match="calibrated for faces aligned with mtcnn landmarks, not 'yunet'"):
        threshold_for(spec, "far_1e-3", "yunet")


def test_shipped_embedder_thresholds_cover_every_registered_detector():
    """Measured by bench/accuracy_lfw.py --write-thresholds; a new detector must be measured too."""
    spec = default_model("embedder")
    assert set(spec.thresholds_detectors) == set(DETECTORS)
    for name in DETECTORS:
        assert threshold_for(spec, "far_1e-3", name) > 0


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detector_name_of_registered_instances(name):
    with create_detector(name, threads=1) as det:
        assert detector_name(det) == name


def test_detector_name_of_a_custom_detector_is_none():
    class Custom:
        def detect(self, image, color="bgr"): ...
        def close(self): ...
        def __enter__(self): return self
        def __exit__(self, *exc): ...
    assert detector_name(Custom()) is None
