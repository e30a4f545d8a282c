"""Named search spaces (``quick``, ``paper``, ``ablation``): loading, validation, and the Optuna
define-by-run function Tune samples from.

A space is data, not code. Either ``parameters`` (searched by Optuna TPE), each a dotted path into
the training config with a distribution and an optional ``when`` condition on earlier choices
(``collaboration.mutual_temperature`` only when ``collaboration.mode`` is ``mutual``); or
``variants`` (a grid: named sets of overrides, each run once per seed in ``seeds``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from training.config import TrainConfig, describe_errors, with_overrides

SPACES_DIR = Path(__file__).parent


class Parameter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None
    when: dict[str, Any] = Field(default_factory=dict, description="sample only when earlier choices match")

    @model_validator(mode="after")
    def _complete(self) -> Parameter:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty 'choices' list")
            return self
        if self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"a {self.type} parameter needs low < high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got low={self.low}")
        return self

    def can_take(self, value: Any) -> bool:
        """Whether sampling can return a value equal to ``value``. A ``when`` condition is compared
        with ``==`` to what was sampled, so ``"2"`` against a choice of ``2`` (a string the training
        config would coerce) never matches, and its parameter would silently never be sampled."""
        if self.type == "categorical":
            return any(
                choice == value and isinstance(choice, str) == isinstance(value, str) for choice in self.choices or []
            )
        if self.type == "int":
            return (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and value == int(value)
                and self.low <= value <= self.high
            )
        return False  # a float draw equals a given value with probability zero

    def values_hint(self) -> str:
        """What sampling can return, for an error about a value it cannot."""
        if self.type == "categorical":
            return f"its choices are {self.choices!r}"
        if self.type == "int":
            return f"it is an int in [{self.low:g}, {self.high:g}]"
        return "it is a float, which never equals a given value"

    def extremes(self) -> list[Any]:
        """Values that must all be valid for the training config (checked before Ray starts)."""
        if self.type == "categorical":
            return list(self.choices or [])
        cast = int if self.type == "int" else float
        return [cast(self.low), cast(self.high)]


class SearchSpace(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=lambda: [0])

    @model_validator(mode="after")
    def _one_kind(self) -> SearchSpace:
        if bool(self.parameters) == bool(self.variants):
            raise ValueError("a search space needs exactly one of 'parameters' (Optuna) or 'variants' (grid)")
        seen: set[str] = set()
        for path, parameter in self.parameters.items():
            for condition, value in parameter.when.items():
                if condition not in seen:
                    raise ValueError(f"parameters.{path}.when names {condition!r}, not a parameter listed before it")
                earlier = self.parameters[condition]
                if not earlier.can_take(value):
                    raise ValueError(
                        f"parameters.{path}.when: {condition} = {value!r} can never be sampled "
                        f"({earlier.values_hint()}), "
                        f"so {path} would never be searched"
                    )
            seen.add(path)
        if not self.seeds:
            raise ValueError("seeds is empty")
        return self

    @property
    def kind(self) -> Literal["optuna", "grid"]:
        return "optuna" if self.parameters else "grid"

    def trial_count(self, num_samples: int) -> int:
        """Trials a sweep of this space starts: ``num_samples`` Optuna samples, or each variant of a
        grid once with each of its seeds."""
        return num_samples if self.kind == "optuna" else len(self.variants) * len(self.seeds)

    def check_against(self, base: TrainConfig, check: Callable[[TrainConfig], None] | None = None) -> None:
        """Refuse, before any trial runs, a path that does not exist or a value the config refuses;
        ``check`` is run on every config that can come out (each parameter at its extremes, with
        the conditions it depends on met; each variant), for what the config alone cannot tell."""
        for path, parameter in self.parameters.items():
            for value in parameter.extremes():
                fixed = {k: p.extremes()[0] for k, p in self.parameters.items() if k in parameter.when}
                fixed |= parameter.when
                try:
                    config = with_overrides(base, fixed | {path: value})
                    if check is not None:
                        check(config)
                except ValueError as error:
                    raise ValueError(f"search space {self.name!r}, parameters.{path} = {value!r}: {error}") from error
        for name, overrides in self.variants.items():
            try:
                config = with_overrides(base, overrides)
                if check is not None:
                    check(config)
            except ValueError as error:
                raise ValueError(f"search space {self.name!r}, variants.{name}: {error}") from error

    def define_by_run(self, prefix: str) -> DefineByRun:
        """Optuna define-by-run: suggests ``<prefix>/<path>``, which Tune nests as ``config[prefix][path]``."""
        return DefineByRun(dict(self.parameters), prefix)


class DefineByRun:
    """The sampling function ``OptunaSearch`` calls per trial. A class, not a closure: Tune pickles
    the searcher (with this) into every experiment checkpoint, and closures cannot be pickled."""

    def __init__(self, parameters: dict[str, Parameter], prefix: str) -> None:
        self.parameters, self.prefix = parameters, prefix

    def __call__(self, trial: Any) -> None:
        chosen: dict[str, Any] = {}
        for path, p in self.parameters.items():
            if any(chosen.get(key) != value for key, value in p.when.items()):
                continue
            name = f"{self.prefix}/{path}"
            if p.type == "categorical":
                chosen[path] = trial.suggest_categorical(name, p.choices)
            elif p.type == "int":
                chosen[path] = trial.suggest_int(name, int(p.low), int(p.high), log=p.log)
            else:
                chosen[path] = trial.suggest_float(name, p.low, p.high, log=p.log)


def available() -> list[str]:
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A shipped space by name (``quick``) or any YAML file; errors name the file and the field."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SPACES_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"no search space named {name_or_path!r}; shipped: {', '.join(available())}")
    payload = read_yaml_mapping(path, "search space file")
    payload.setdefault("name", path.stem)
    try:
        return SearchSpace.model_validate(payload)
    except ValidationError as error:
        raise ValueError(f"{path}: {describe_errors(error)}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping. Plain YAML keeps the last
    one, so a second ``spectrum_weight:`` further down a config would silently undo the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Only the keys written in this mapping count: ``<<: *base`` merges are expanded first,
        # and a key given here overrides the merged one, as YAML intends.
        written = sum(key.tag != "tag:yaml.org,2002:merge" for key, _ in node.value)
        self.flatten_mapping(node)  # puts the merged pairs first, then the written ones
        seen: dict[Any, int] = {}
        for key_node, _ in node.value[len(node.value) - written :]:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key on line {line} is a {type(key).__name__}, not a name", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} on line {line} is also on line {seen[key]}; keep one", key_node.start_mark
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """A YAML file whose top level is a mapping; errors name the file (``what`` says which kind)."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    try:
        payload = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return payload
