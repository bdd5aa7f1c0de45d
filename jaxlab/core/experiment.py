"""Runs one registered experiment into its run directory.

The run directory contract: ``config.json`` (the resolved config),
``metrics.jsonl`` (one line per logged step or round), ``result.json`` (the
summary, always with ``wall_seconds``, ``device_kind`` and ``jax_version``),
``checkpoints/`` (orbax) and PNG plots.
"""

import json
import pathlib
import time
from collections.abc import Sequence
from typing import Any

import jax

from jaxlab.core import config as config_lib
from jaxlab.core import registry
from jaxlab.core.errors import ConfigError
from jaxlab.core.metrics import to_python, write_json


def default_out(name: str, smoke: bool) -> pathlib.Path:
  return pathlib.Path("runs") / (f"{name}-smoke" if smoke else name)


def resolve_config(name: str, smoke: bool, overrides: Sequence[str]) -> tuple[Any, Any]:
  """The experiment module and its config with ``--set`` overrides applied."""
  mod = registry.get(name)
  cfg = config_lib.apply_overrides(mod.get_config(smoke=smoke), overrides)
  return mod, cfg


def prepare_out_dir(out_dir: pathlib.Path, saved: dict[str, Any], resume: bool) -> None:
  """Refuses to overwrite a run, or to resume one whose config differs."""
  cfg_path = out_dir / "config.json"
  if cfg_path.exists():
    if not resume:
      raise ConfigError(
        f"{out_dir} already holds a run; pass --resume to continue it or choose"
        " another --out (nothing was overwritten)"
      )
    old = json.loads(cfg_path.read_text())
    # compare in the form config.json stores (non-finite floats become strings)
    changed = config_lib.diff(old, json.loads(json.dumps(to_python(saved))))
    if changed:
      raise ConfigError(
        f"cannot resume {out_dir}: its config differs in {'; '.join(changed)};"
        " use the same --set values or another --out (nothing was overwritten)"
      )
  elif out_dir.exists() and any(out_dir.iterdir()) and not resume:
    raise ConfigError(
      f"{out_dir} is not empty and holds no jaxlab run; choose another --out"
    )
  out_dir.mkdir(parents=True, exist_ok=True)


def undo_empty_start(out_dir: pathlib.Path) -> bool:
  """Removes a run directory that a failed start left holding only its config.

  A run that fails before it writes anything (a bad partition, a missing asset) should not
  leave a ``config.json`` behind, or the same command then refuses with "already holds a run".
  Deletes ``config.json`` and any empty files and empty folders, and the directory itself if it
  ends empty; leaves everything untouched (and returns False) if any file holds data.
  """
  out_dir = pathlib.Path(out_dir)
  if not out_dir.is_dir():
    return False
  entries = sorted(out_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True)
  if any(p.is_file() and p.name != "config.json" and p.stat().st_size for p in entries):
    return False
  for p in entries:
    p.unlink() if p.is_file() or p.is_symlink() else p.rmdir()
  out_dir.rmdir()
  return True


def run(
  name: str,
  *,
  smoke: bool = False,
  overrides: Sequence[str] = (),
  out_dir: pathlib.Path | str | None = None,
  resume: bool = False,
) -> dict[str, Any]:
  """Runs experiment ``name`` and returns its result dict (also in result.json)."""
  mod, cfg = resolve_config(name, smoke, overrides)
  out_dir = pathlib.Path(out_dir) if out_dir else default_out(name, smoke)
  saved = {"experiment": name, "smoke": smoke, "config": config_lib.to_dict(cfg)}
  fresh = not out_dir.exists() or not any(out_dir.iterdir())
  prepare_out_dir(out_dir, saved, resume)
  write_json(out_dir / "config.json", saved)
  t0 = time.perf_counter()
  try:
    result = dict(mod.run(cfg, out_dir) or {})
  except BaseException:
    if fresh and jax.process_index() == 0:   # the lead wrote config.json; only it cleans up
      undo_empty_start(out_dir)
    raise
  result.update(
    experiment=name,
    smoke=smoke,
    wall_seconds=round(time.perf_counter() - t0, 2),
    device_kind=jax.devices()[0].device_kind,
    device_count=jax.device_count(),
    jax_version=jax.__version__,
  )
  write_json(out_dir / "result.json", result)
  return result
