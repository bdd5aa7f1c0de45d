"""`jaxlab reproduce`: runs each paper's experiment and writes REPORT.md."""

import json
import pathlib
import platform
import time
import traceback
from collections.abc import Sequence
from typing import Any

import jax

from jaxlab.core import experiment, registry
from jaxlab.core.errors import ConfigError, JaxlabError

_TIMING = ("wall_seconds", "device_kind", "device_count", "jax_version", "experiment", "smoke")


def _numbers(result: dict[str, Any], limit: int = 24) -> str:
  rows = []
  for k, v in result.items():
    if k in _TIMING or isinstance(v, (dict, list)):
      continue
    rows.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
  rows = rows[:limit]
  return "| quantity | value |\n| --- | --- |\n" + "\n".join(rows) if rows else ""


def section(name: str, smoke: bool, out_dir: pathlib.Path, result: dict | None,
            error: str | None) -> str:
  mod = registry.get(name)
  cmd = f"jaxlab run {name}{' --smoke' if smoke else ''} --out {out_dir}"
  lines = [f"## {name}", "", getattr(mod, "DESCRIPTION", ""), ""]
  claim = getattr(mod, "CLAIM", "")
  if claim:
    lines += [f"**Claim.** {claim}", ""]
  lines += [f"Command: `{cmd}`", ""]
  if error:
    lines += [f"**Failed:** `{error}`", ""]
    return "\n".join(lines)
  lines += [
    f"Device: {result['device_kind']} x{result.get('device_count', 1)},"
    f" jax {result['jax_version']}, {result['wall_seconds']:.1f} s", "",
  ]
  custom = getattr(mod, "report", None)
  lines += [custom(result) if custom else _numbers(result), ""]
  for png in sorted(out_dir.glob("*.png")):
    lines += [f"![{png.stem}]({png.relative_to(out_dir.parent)})", ""]
  return "\n".join(lines)


def reproduce(
  *, quick: bool = True, only: Sequence[str] = (), out_root: pathlib.Path | str = "runs/reproduce"
) -> tuple[pathlib.Path, int]:
  """Runs the chosen experiments; returns the REPORT.md path and the failure count.

  An experiment whose run directory already holds a result for the same config
  is not run again; a half-finished one resumes from its checkpoints.
  """
  out_root = pathlib.Path(out_root)
  plan = registry.quick() if quick else {n: False for n in registry.available()}
  if only:
    unknown = [n for n in only if n not in registry.table()]
    if unknown:
      raise ConfigError(
        f"unknown experiment(s) {', '.join(unknown)}; see `jaxlab list`"
      )
    plan = {n: plan.get(n, False) for n in only}
  parts, failures = [], 0
  for name, smoke in plan.items():
    out_dir = out_root / name
    result, error = None, None
    print(f"== {name}{' (smoke)' if smoke else ''} -> {out_dir}", flush=True)
    try:
      done = out_dir / "result.json"
      if done.exists():
        result = json.loads(done.read_text())
        print("   (already done; delete the folder to rerun)")
      else:
        result = experiment.run(name, smoke=smoke, out_dir=out_dir, resume=True)
    except JaxlabError as e:
      error = f"{type(e).__name__}: {e}"
    except Exception as e:  # one experiment's crash must not lose the others
      error = f"{type(e).__name__}: {e}"
      traceback.print_exc()
    if error:
      failures += 1
      print(f"   FAILED: {error}", flush=True)
    parts.append(section(name, smoke, out_dir, result, error))
  head = [
    "# jaxlab reproduction report", "",
    f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} on {platform.node()}"
    f" ({jax.devices()[0].device_kind} x{jax.device_count()}, jax {jax.__version__}).",
    "Quick runs are small-scale offline reproductions on bundled data, not the papers'"
    " settings." if quick else "", "",
  ]
  report = out_root / "REPORT.md"
  out_root.mkdir(parents=True, exist_ok=True)
  report.write_text("\n".join(head + parts) + "\n")
  return report, failures
