"""The built-in model zoo: YAML specs in models/, addressed by name (``edgesim inspect lenet-5``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from simulator.importers.yamlspec import read_spec
from simulator.resources import data_dir


@dataclass(frozen=True)
class ZooEntry:
    name: str
    path: Path
    description: str
    source: str
    input_shape: tuple[int, ...]


def zoo_path(name: str) -> Path | None:
    path = data_dir("models") / f"{name}.yaml"
    return path if path.is_file() else None


def zoo_names() -> list[str]:
    return sorted(p.stem for p in data_dir("models").glob("*.yaml"))


def zoo_entries() -> list[ZooEntry]:
    entries = []
    for name in zoo_names():
        path = data_dir("models") / f"{name}.yaml"
        spec = read_spec(path)
        shape = tuple(spec["inputs"][0]["shape"])
        entries.append(ZooEntry(name, path, spec.get("description", ""), spec.get("source", ""), shape))
    return entries
