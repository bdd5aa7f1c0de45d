"""JSONL metrics and the result summary."""

import json
import math
import pathlib
from typing import Any

import numpy as np


def to_python(x: Any) -> Any:
  """Converts arrays and numpy scalars in a nested structure to JSON values."""
  if isinstance(x, dict):
    return {str(k): to_python(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [to_python(v) for v in x]
  if hasattr(x, "shape") and hasattr(x, "dtype"):
    arr = np.asarray(x)
    return arr.item() if arr.ndim == 0 else arr.tolist()
  if isinstance(x, float) and not math.isfinite(x):
    return str(x)
  return x


def all_finite(x: Any) -> bool:
  """True when every float in a nested dict/list/tuple result is finite."""
  if isinstance(x, dict):
    return all(all_finite(v) for v in x.values())
  if isinstance(x, (list, tuple)):
    return all(all_finite(v) for v in x)
  if isinstance(x, float):
    return math.isfinite(x)
  return True


def _not_lead() -> bool:
  """Only process 0 writes files in a multi-host run."""
  import jax

  return jax.process_count() > 1 and jax.process_index() != 0


def write_json(path: pathlib.Path | str, obj: Any) -> None:
  """Writes ``obj`` as indented JSON, atomically (write then rename)."""
  if _not_lead():
    return
  path = pathlib.Path(path)
  tmp = path.with_suffix(path.suffix + ".tmp")
  tmp.write_text(json.dumps(to_python(obj), indent=2, sort_keys=True) + "\n")
  tmp.replace(path)


def read_jsonl(path: pathlib.Path | str) -> list[dict[str, Any]]:
  path = pathlib.Path(path)
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line]


class MetricsWriter:
  """Appends one JSON line per logged step to ``out_dir/metrics.jsonl``."""

  def __init__(self, out_dir: pathlib.Path | str, name: str = "metrics.jsonl"):
    self.path = pathlib.Path(out_dir) / name
    self.path.parent.mkdir(parents=True, exist_ok=True)

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    if _not_lead():
      return
    row = {"step": int(step), **to_python(metrics)}
    with self.path.open("a") as f:
      f.write(json.dumps(row, sort_keys=True) + "\n")

  def truncate(self, step: int) -> None:
    """Drops lines logged after ``step`` (used when resuming from ``step``)."""
    rows = [r for r in read_jsonl(self.path) if r.get("step", 0) <= step]
    self.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))

  def rows(self) -> list[dict[str, Any]]:
    return read_jsonl(self.path)
