"""``--set section.field=value``: one field of a sweep YAML changed from the command line.

Values are read as YAML scalars or flow collections (``0.01``, ``true``, ``[ce, kd]``,
``{width_mult: 0.5}``), so a value means what it would mean written in the file, and the result is
validated exactly as the file is. Paths given on the command line are relative to the directory
the command runs in, as a shell user expects, not to the YAML's.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from training import storage
from training.config import WEIGHT_FILE_SUFFIXES

# Fields that hold local paths or storage URIs (``train.init`` only when it names a file).
PATH_FIELDS = ("storage_path", "train.data.path", "train.teachers", "train.init", "search_space")


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["train.optim.lr=0.01", …]`` → ``{"train.optim.lr": 0.01, …}``; errors name the item."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, separator, text = item.partition("=")
        if not separator or not key or any(not part for part in key.split(".")):
            raise ValueError(f"--set {item}: expected FIELD=VALUE with a dotted field, e.g. train.optim.lr=0.01")
        try:
            overrides[key] = yaml.safe_load(text) if text else ""
        except yaml.YAMLError as error:
            raise ValueError(f"--set {item}: the value is not valid YAML ({error})") from None
    return overrides


def apply_overrides(payload: dict[str, Any], overrides: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """``payload`` (a sweep YAML's mapping) with each dotted field set, sections created as needed;
    unknown fields are left for validation to name."""
    result = copy.deepcopy(payload)
    for key, value in overrides.items():
        node = result
        *sections, leaf = key.split(".")
        for depth, section in enumerate(sections):
            child = node.setdefault(section, {})
            if not isinstance(child, dict):
                where = ".".join(sections[: depth + 1])
                raise ValueError(f"--set {key}: {where} is {child!r}, not a section with fields")
            node = child
        node[leaf] = _from_here(key, value, cwd)
    return result


def _from_here(key: str, value: Any, cwd: Path) -> Any:
    """A path field's local paths made absolute against ``cwd`` (the YAML's directory then leaves
    them alone); anything else as given."""
    if key not in PATH_FIELDS:
        return value
    if key == "search_space" and not str(value).endswith((".yaml", ".yml")):
        return value  # a shipped space's name
    if key == "train.init" and not (isinstance(value, str) and storage.is_location(value, WEIGHT_FILE_SUFFIXES)):
        return value  # a weights name
    if isinstance(value, list):
        return [storage.resolve(v, cwd) if isinstance(v, str) else v for v in value]
    return storage.resolve(value, cwd) if isinstance(value, str) else value
