"""Load and validate the topology file; a wrong file fails with the file, the field path and the reason."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shared import settings
from shared.config.model import Topology
from shared.errors import ConfigError
from shared.payloads import depth


class TopologyError(ConfigError):
    """The topology file is missing, not YAML, or does not validate; `problems` lists 'path: reason'."""

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(f"{file}: {p}" for p in problems))


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part).startswith(("function-", "json-")):
            continue  # pydantic's validator-wrapper markers are not fields an admin can find
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        problems.append(f"{_field_path(tuple(error['loc']))}: {message}")
    return problems


def parse_topology(data: Any, file: str = "<topology>") -> Topology:
    """Validate already-parsed topology data."""
    if not isinstance(data, dict):
        raise TopologyError(file, ["(top level): must be a mapping with regions, pairings and policies"])
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        raise TopologyError(file, _problems(exc)) from None


MAX_BYTES = 1 << 20  # a topology is a few kilobytes; a megabyte is a mistake, not an estate
MAX_DEPTH = 32  # the model nests six levels; anything deeper is not a topology


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # libyaml's loader when built, else Python's
    """Safe YAML (libyaml's parser where present, which stops at 1000 levels) that refuses duplicate keys."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise yaml.MarkedYAMLError(problem="a key must be a plain value", problem_mark=key_node.start_mark)
            if key in seen:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {str(key)[:80]!r}", problem_mark=key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_topology(path: str | Path) -> Topology:
    """Read and validate a topology YAML (or JSON) file: UTF-8, at most 1 MiB, no duplicate keys."""
    file = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise TopologyError(file, [f"(file): cannot read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_BYTES:
        raise TopologyError(file, [f"(file): larger than {MAX_BYTES // 1024} KiB; a topology is a few kilobytes"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TopologyError(file, [f"line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"]) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "(file)"
        raise TopologyError(file, [f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"]) from None
    except RecursionError:
        raise TopologyError(file, [f"(file): nested deeper than {MAX_DEPTH} levels"]) from None
    if depth(data) > MAX_DEPTH:
        raise TopologyError(file, [f"(file): nested deeper than {MAX_DEPTH} levels, or aliases that repeat or contain themselves"])
    return parse_topology(data, file)


APP_ROOT = Path(__file__).resolve().parents[2]  # where function_app.py is: the deployed package's root


def get_topology(path: str | None = None) -> Topology:
    """The app's topology, loaded once per process from TANDEM_TOPOLOGY_PATH (or `path`); a relative path that is
    not found from the working directory is taken from the app's root (where the deployed package puts it)."""
    location = settings.get(settings.TOPOLOGY_PATH, explicit=path)
    assert location is not None  # TOPOLOGY_PATH has a default
    if not Path(location).is_absolute() and not Path(location).exists():
        location = str(APP_ROOT / location)
    return _load_once(location)


@functools.cache
def _load_once(location: str) -> Topology:
    return load_topology(location)


def json_schema() -> str:
    """The topology's JSON Schema, for editors (yaml-language-server) and reviewers."""
    schema = Topology.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Tandem topology"
    return json.dumps(schema, indent=2, sort_keys=True)
