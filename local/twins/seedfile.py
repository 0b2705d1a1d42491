"""How every twin reads its seed file: YAML (or JSON) validated by a pydantic model, errors naming file and field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError


def read_seed[M: BaseModel](model: type[M], path: str | Path) -> M:
    """The seed at `path`, validated; ValueError `file: field.path: problem; ...` when it is wrong."""
    source = Path(path)
    try:
        return model.model_validate(yaml.safe_load(source.read_text(encoding="utf-8")) or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{source}: {problems}") from exc
