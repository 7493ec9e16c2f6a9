"""``edgeface info``: versions, backend, cores, models and licences."""
from __future__ import annotations

import argparse
from typing import Any

from . import EXIT_OK, emit_json, output_options


def cmd_info(args: argparse.Namespace) -> int:
    import numpy as np
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__
    from ..models import default_model, get_model, list_models
    from ..runtime import physical_cores, resolve_backend
    info: dict[str, Any] = {
        "edgeface": __version__, "numpy": np.__version__, "backend": resolve_backend(args.backend),
        "physical_cores": physical_cores(),
        "defaults": {role: default_model(role).name for role in ("embedder",)},
        "models": [{"name": m.name, "role": m.role, "precision": m.precision, "license": m.license}
                   for m in map(get_model, list_models())],
    }
    # Versions from the installed distributions' metadata: importing OpenVINO just to print its
    # version would start its telemetry; an optional backend that is not installed shows as None.
    for module, dist in (("onnxruntime", "onnxruntime"), ("openvino", "openvino"),
                         ("cv2", "opencv-python-headless"), ("tqdm", "tqdm")):
        try:
            info[module] = version(dist)
        except PackageNotFoundError:
            info[module] = None
    if args.json:
        emit_json({"command": "info", **info})
    else:
        for key, value in info.items():
            if key != "models":
                print(f"{key}: {value}")
        for m in info["models"]:
            print(f"model: {m['name']} ({m['role']}, {m['precision']}, {m['license']})")
    return EXIT_OK


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("info", parents=[output_options()], help="models, backend and versions",
                              description="Versions, the backend that would be used, cores, models and licences.")
    p.add_argument("--backend", choices=["onnxruntime", "openvino"], default=None,
                   help="report this backend instead of the default ($EDGEFACE_BACKEND, else onnxruntime)")
    p.set_defaults(func=cmd_info)
