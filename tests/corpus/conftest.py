"""Real public models shipped inside registry packages, fetched once per machine into pytest's cache.

The rapidocr-onnxruntime wheel carries PaddleOCR's PP-OCRv4 text detector and recognizer and the v2.0 text
direction classifier, exported by paddle2onnx. Its dependencies (OpenCV, ...) are heavy and unneeded, so the
wheel alone is downloaded with pip (`pip download --no-deps`) and only its .onnx files are read. Without
network access to the registry the corpus tests skip with the reason."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

RAPIDOCR = "rapidocr-onnxruntime==1.4.4"
#: file stem -> (input shape the model runs at, why): the shapes RapidOCR feeds them
RAPIDOCR_MODELS = {
    # the detector at a 640 x 640 page, the size PP-OCR's detection configs train on (EastRandomCropData)
    "ch_PP-OCRv4_det_infer": (1, 3, 640, 640),
    # the recognizer's rec_image_shape [3, 48, 320]
    "ch_PP-OCRv4_rec_infer": (1, 3, 48, 320),
    # the direction classifier's cls_image_shape [3, 48, 192]
    "ch_ppocr_mobile_v2.0_cls_infer": (1, 3, 48, 192),
}


def _download_wheel(spec: str, into: Path) -> Path:
    wheels = sorted(into.glob("*.whl"))
    if wheels:
        return wheels[-1]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(into), spec]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot download {spec} from the package registry: {exc}")
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        reason = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        pytest.skip(f"cannot download {spec} from the package registry: {reason}")
    return wheels[-1]


@pytest.fixture(scope="session")
def rapidocr_models(request, tmp_path_factory) -> dict[str, Path]:
    """File stem -> path of each .onnx model of the rapidocr-onnxruntime wheel (extracted by name only: a
    wheel is untrusted input, its member paths are never used as file paths). Kept in pytest's cache across
    runs; in a temporary directory when the cache plugin is off (-p no:cacheprovider)."""
    cache_plugin = getattr(request.config, "cache", None)
    if cache_plugin is not None:
        cache = Path(cache_plugin.mkdir("corpus-rapidocr"))
    else:
        cache = tmp_path_factory.mktemp("corpus-rapidocr")
    wheel = _download_wheel(RAPIDOCR, cache)
    models = {}
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            stem = Path(member).stem
            if member.endswith(".onnx") and stem in RAPIDOCR_MODELS:
                target = cache / f"{stem}.onnx"
                if not target.is_file():
                    target.write_bytes(archive.read(member))
                models[stem] = target
    missing = sorted(set(RAPIDOCR_MODELS) - set(models))
    assert not missing, f"{wheel.name} no longer ships {', '.join(missing)}"
    return models
