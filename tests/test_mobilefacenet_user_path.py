"""The MobileFaceNet user path with the real file: import (CLI) -> FaceAnalyzer -> enroll -> identify ->
verify, name clashes, a tampered file, an unknown file without calibration, re-embedding a gallery.

The .tflite is third-party and not redistributable: it lives in ../shared/models (CI has it) and the
tests skip with the reason when it is absent. Conversion + quantization run once for this module, into a
temporary EDGEFACE_HOME.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from edgeface import models
from edgeface.errors import GalleryError, ModelError, ModelIntegrityError

from conftest import DATA, shared_data

TFLITE = DATA.parent / "models" / "MobileFaceNet.tflite"
pytest.importorskip("tflite", reason="the converter needs pip install 'edgeface[convert]'")
pytest.importorskip("onnx", reason="the converter needs pip install 'edgeface[convert]'")
if not TFLITE.is_file():
    pytest.skip(f"{TFLITE} not present (third-party weights, never in the repository; see ../shared/models/README.md)",
                allow_module_level=True)

# LFW photos: two of one person, one of another (read in place, never copied into the repository).
SAME = ("Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg")
OTHER = "Akhmed_Zakayev/Akhmed_Zakayev_0001.jpg"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """EDGEFACE_HOME with the shared MobileFaceNet imported through the CLI (once for the module)."""
    from edgeface.cli import main
    folder = tmp_path_factory.mktemp("edgeface_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(models.ENV_HOME, str(folder))
        mp.delenv(models.ENV_MODELS_DIR, raising=False)
        assert main(["models", "import", "mobilefacenet", str(TFLITE)]) == 0
        yield folder


def lfw(rel: str) -> str:
    return str(shared_data("lfw") / "images" / rel)


@pytest.fixture
def env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(models.ENV_HOME, str(home))
    monkeypatch.delenv(models.ENV_MODELS_DIR, raising=False)
    return home


def test_import_writes_both_precisions_with_caveat_and_thresholds(env: Path) -> None:
    raw = json.loads((env / "models" / "manifest.json").read_text())
    assert set(raw["models"]) == {"mobilefacenet", "mobilefacenet_int8"}
    for name, precision in (("mobilefacenet", "fp32"), ("mobilefacenet_int8", "int8")):
        spec = models.get_model(name)
        assert spec.origin == models.IMPORTED and spec.precision == precision
        assert spec.embedding_space == "mobilefacenet" and spec.embedding_dim == 192
        assert "unclear" in spec.license and raw["models"][name]["caveat"]
        assert models.verify_model(spec) == spec.path and spec.path.parent == env / "models"
        # The known file gets the operating points calibrated on LFW when edgeface was built.
        assert set(spec.thresholds) >= {"far_1e-3", "best_accuracy"}
    # The bundled models are all still there.
    assert {"mtcnn_pnet", "dlib_resnet_v1_int8"} <= set(models.list_models())


def test_converter_and_quantizer_are_deterministic(env: Path, tmp_path: Path) -> None:
    """Same .tflite -> same ONNX bytes, same ranges -> same INT8 bytes: the ones the thresholds belong to."""
    from edgeface.mobilefacenet import convert_mobilefacenet_tflite
    from edgeface.model_import import MFN_QUANT
    from edgeface.quantization import quantize
    a = convert_mobilefacenet_tflite(TFLITE, tmp_path / "a.onnx")
    b = convert_mobilefacenet_tflite(TFLITE, tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes() and a["sha256"] == b["sha256"]
    assert a["sha256"] == models.get_model("mobilefacenet").sha256
    record = models.load_manifest().imports["mobilefacenet"][hashlib.sha256(TFLITE.read_bytes()).hexdigest()]
    assert record["fp32"]["sha256"] == a["sha256"]
    ranges = record["quantization"]["ranges"]
    q1 = quantize(tmp_path / "a.onnx", None, ranges, MFN_QUANT)
    q2 = quantize(tmp_path / "b.onnx", None, ranges, MFN_QUANT)
    assert q1 == q2 and hashlib.sha256(q1).hexdigest() == models.get_model("mobilefacenet_int8").sha256
    assert record["int8"]["sha256"] == models.get_model("mobilefacenet_int8").sha256


def test_enroll_identify_verify_with_the_int8_model(env: Path, tmp_path: Path) -> None:
    from edgeface import FaceAnalyzer
    with FaceAnalyzer(embedder="mobilefacenet_int8", threads=1, gallery=tmp_path / "g.db") as fa:
        face, vector = fa.embed_largest(lfw(SAME[0]))
        assert face is not None and vector.shape == (192,)
        fa.gallery.enroll("abel", vector[None], sources=[lfw(SAME[0])])
        same = fa.analyze(lfw(SAME[1]))
        assert [i.name for i in same.identities] == ["abel"]
        other = fa.analyze(lfw(OTHER))
        assert [i.name for i in other.identities] == [None]
        assert fa.verify(lfw(SAME[0]), lfw(SAME[1])).same
        assert not fa.verify(lfw(SAME[0]), lfw(OTHER)).same


def test_cli_identify_and_verify(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgeface.cli import main
    db = str(tmp_path / "g.db")
    assert main(["enroll", "--embedder", "mobilefacenet_int8", db, lfw(SAME[0]), "--name", "abel"]) == 0
    capsys.readouterr()
    assert main(["identify", "--embedder", "mobilefacenet_int8", "--json", db, lfw(SAME[1])]) == 0
    assert '"abel"' in capsys.readouterr().out
    assert main(["verify", "--embedder", "mobilefacenet_int8", lfw(SAME[0]), lfw(SAME[1])]) == 0
    assert main(["verify", "--embedder", "mobilefacenet_int8", lfw(SAME[0]), lfw(OTHER)]) == 1


def test_list_shows_where_each_model_lives(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgeface.cli import main
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    assert rows["mobilefacenet_int8"]["origin"] == "imported"
    assert rows["mobilefacenet_int8"]["path"].startswith(str(env))
    assert rows["mtcnn_onet"]["origin"] == "bundled"


def test_name_clashes_are_refused(env: Path) -> None:
    from edgeface.model_import import import_model
    with pytest.raises(ModelError, match="bundled"):
        import_model("mobilefacenet", TFLITE, name="dlib_resnet_v1")
    with pytest.raises(ModelError, match="already imported"):
        import_model("mobilefacenet", TFLITE)
    from edgeface.cli import main
    assert main(["models", "remove", "mtcnn_onet"]) == 4  # bundled: refused, nothing removed
    assert models.get_model("mtcnn_onet").path.is_file()


def test_a_clashing_entry_planted_in_the_user_manifest_is_ignored(env: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    shutil.copytree(env, home)
    manifest = home / "models" / "manifest.json"
    raw = json.loads(manifest.read_text())
    raw["models"]["dlib_resnet_v1_int8"] = raw["models"]["mobilefacenet_int8"]
    manifest.write_text(json.dumps(raw))
    monkeypatch.setenv(models.ENV_HOME, str(home))
    with pytest.warns(UserWarning, match="dlib_resnet_v1_int8"):
        spec = models.get_model("dlib_resnet_v1_int8")
    assert spec.origin == models.BUNDLED and spec.embedding_dim == 128


def test_a_tampered_imported_file_is_refused(env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeface.embedding import Embedder
    home = tmp_path / "home"
    shutil.copytree(env, home)
    monkeypatch.setenv(models.ENV_HOME, str(home))
    path = models.get_model("mobilefacenet_int8").path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="models remove mobilefacenet_int8"):
        Embedder("mobilefacenet_int8")


def test_an_unknown_file_needs_calibration(env: Path, tmp_path: Path) -> None:
    from edgeface.model_import import import_model
    data = bytearray(TFLITE.read_bytes())
    data[len(data) // 2] ^= 0x01  # a weight byte: still a valid MobileFaceNet, but not the calibrated one
    unknown = tmp_path / "other.tflite"
    unknown.write_bytes(bytes(data))
    before = sorted(p.name for p in (env / "models").iterdir())
    with pytest.raises(ModelError, match=r"--calibrate PAIRS\.tsv.*numeric cosine threshold"):
        import_model("mobilefacenet", unknown, name="other")
    assert sorted(p.name for p in (env / "models").iterdir()) == before
    assert "other" not in models.list_models()


def test_an_unknown_file_is_calibrated_from_labelled_pairs(env: Path, tmp_path: Path) -> None:
    """--calibrate PAIRS.tsv: thresholds measured on the user's pairs, valid for the detector that aligned them."""
    from edgeface.detection import DEFAULT_DETECTOR
    from edgeface.matching import threshold_for
    from edgeface.model_import import import_model, remove_model
    data = bytearray(TFLITE.read_bytes())
    data[len(data) // 2] ^= 0x01
    unknown = tmp_path / "other.tflite"
    unknown.write_bytes(bytes(data))
    lfw_root = shared_data("lfw")
    rows = (lfw_root / "pairs.tsv").read_text().splitlines()
    same = [r for r in rows[1:] if r.split("\t")[2] == "1"][:40]
    different = [r for r in rows[1:] if r.split("\t")[2] == "0"][:40]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("path1\tpath2\tsame\n" + "".join(
        f"{lfw_root / a}\t{lfw_root / b}\t{label}\n" for a, b, label, _ in (r.split("\t") for r in same + different)))
    result = import_model("mobilefacenet", unknown, name="other", calibrate_pairs=pairs)
    try:
        assert "calibrated on this machine" in result.thresholds_from
        spec = models.get_model("other_int8")
        assert spec.thresholds_detectors == (DEFAULT_DETECTOR,)
        # 40 different-person pairs resolve no FAR point down to 1e-2: only the best-accuracy threshold.
        assert set(spec.thresholds) == {"best_accuracy"} and 0.0 < spec.thresholds["best_accuracy"] < 1.0
        assert threshold_for(spec, "best_accuracy", DEFAULT_DETECTOR) == spec.thresholds["best_accuracy"]
    finally:
        remove_model("other")
        remove_model("other_int8")
    assert "other" not in models.list_models()


def test_remove_and_reimport(env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeface.cli import main
    home = tmp_path / "home"
    shutil.copytree(env, home)
    monkeypatch.setenv(models.ENV_HOME, str(home))
    path = models.get_model("mobilefacenet").path
    assert main(["models", "remove", "mobilefacenet"]) == 0
    assert not path.exists() and "mobilefacenet" not in models.list_models()
    assert "mobilefacenet_int8" in models.list_models()
    assert main(["models", "remove", "mobilefacenet"]) == 4


def test_reembed_gallery_reports_missing_photos(env: Path, tmp_path: Path) -> None:
    from edgeface import FaceAnalyzer
    from edgeface.reembed import reembed_gallery, sources
    moved = tmp_path / "gone.jpg"
    shutil.copy(lfw(SAME[1]), moved)
    old = tmp_path / "old.db"
    with FaceAnalyzer(threads=1, gallery=old) as fa:  # the default (dlib) embedder
        for name, path in (("abel", lfw(SAME[0])), ("abel", str(moved)), ("akhmed", lfw(OTHER))):
            face, vector = fa.embed_largest(path)
            fa.gallery.enroll(name, vector[None], sources=[path])
        fa.gallery.enroll("no_photo", np.ones((1, fa.embedder.dim), np.float32))
    moved.unlink()
    assert len(sources(old)) == 4
    new = tmp_path / "new.db"
    report = reembed_gallery(old, new, embedder="mobilefacenet_int8", threads=1)
    assert report.embedding_space == "mobilefacenet" and report.embeddings == 2
    assert sorted(report.people) == ["abel", "akhmed"]
    assert any(str(moved) in p and "not found" in p for p in report.problems)
    assert any(p.startswith("no_photo") for p in report.problems)
    with FaceAnalyzer(embedder="mobilefacenet_int8", threads=1) as fa:
        with fa.open_gallery(new, create=False) as g:
            assert sorted(p.name for p in g.people()) == ["abel", "akhmed"]
            assert [i.name for i in g.identify(fa.embed_largest(lfw(SAME[1]))[1][None], fa.threshold)] == ["abel"]
    with pytest.raises(GalleryError, match="already exists"):
        reembed_gallery(old, new, embedder="mobilefacenet_int8")
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_cli_gallery_reembed(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`edgeface gallery reembed OLD NEW --embedder NAME` re-enrolls from the recorded photos."""
    from edgeface.cli import EXIT_OK, EXIT_USAGE, main
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    assert main(["enroll", str(old), "--name", "abel", lfw(SAME[0])]) == EXIT_OK
    assert main(["gallery", "reembed", str(old), str(new)]) == EXIT_USAGE  # --embedder is required
    capsys.readouterr()
    assert main(["gallery", "reembed", str(old), str(new), "--embedder", "mobilefacenet_int8", "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["command"] == "gallery reembed" and report["embeddings"] == 1
    assert main(["gallery", "list", str(new), "--json"]) == EXIT_OK
    listed = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listed["people"]] == ["abel"] and listed["model"].startswith("mobilefacenet")
