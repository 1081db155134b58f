"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest


@pytest.fixture
def save(tmp_path):
    """save(model, name) -> path of the model written into a temporary directory."""

    def _save(model: onnx.ModelProto, name: str = "model.onnx") -> Path:
        path = tmp_path / name
        onnx.save(model, path)
        return path

    return _save
