"""Benchmark discipline shared by every ``scripts/bench_*.py``.

A Python loop of many small dispatches (the PyTorch baselines) slows down far more under load than
one compiled JAX call, so a ratio measured on a busy machine is inflated. Every benchmark therefore:

- prints the machine's load average and core count when it starts and when it ends, and warns
  loudly (and marks its record ``"loaded": true``) when the 1-minute load exceeds ``LOAD_LIMIT``
  at start;
- reports compile time (first call) beside steady-state time (median of repeats);
- appends one JSON record to ``$JAXLAB_BENCH_JSON`` (or ``--json PATH``) so that
  ``scripts/bench_all.sh`` can build one table from all of them.

Usage in a script::

  rec = bench.Recorder("sinkhorn", args=vars(args))
  t = bench.time_call(lambda: jax.block_until_ready(f(x)), reps=5)   # {"compile_s", "steady_s"}
  rec.row("OT logits fwd+bwd, 100 it", jaxlab_s=t["steady_s"], baseline_s=tb["steady_s"],
          compile_s=t["compile_s"], goal=3.0)
  rec.finish()
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from jaxlab.core import hardware

LOAD_LIMIT = 1.5


def machine_load() -> dict[str, Any]:
  """The 1/5/15-minute load averages and the usable core count."""
  try:
    l1, l5, l15 = os.getloadavg()
  except OSError:  # pragma: no cover - not on Linux/macOS
    l1 = l5 = l15 = float("nan")
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return {"load1": round(l1, 2), "load5": round(l5, 2), "load15": round(l15, 2), "cores": cores}


def time_call(fn: Callable[[], Any], reps: int = 5, warmup: int = 0) -> dict[str, float]:
  """Times ``fn`` (which must block until its result is ready).

  The first call is reported as ``compile_s`` (compile + one run for a jitted function);
  ``warmup`` further untimed calls follow; ``steady_s`` is the median of ``reps`` timed calls
  and ``best_s`` their minimum.
  """
  t = time.perf_counter()
  fn()
  first = time.perf_counter() - t
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(max(1, reps)):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return {"compile_s": first, "steady_s": statistics.median(times), "best_s": min(times)}


class Recorder:
  """Prints the load guard, collects result rows and writes them as one JSON record."""

  def __init__(self, name: str, args: dict[str, Any] | None = None, json_path: str | None = None):
    self.name = name
    self.args = dict(args or {})
    self.json_path = json_path or os.environ.get("JAXLAB_BENCH_JSON")
    self.rows: list[dict[str, Any]] = []
    self.start = machine_load()
    self.t0 = time.time()
    self.loaded = not (self.start["load1"] <= LOAD_LIMIT)
    print(f"[bench {name}] start: load average {self.start['load1']} / {self.start['load5']} / "
          f"{self.start['load15']} on {self.start['cores']} cores ({hardware.cpu_summary()})",
          flush=True)
    if self.loaded:
      bar = "!" * 78
      print(f"{bar}\n[bench {name}] WARNING: 1-minute load {self.start['load1']} > {LOAD_LIMIT}: "
            "the machine is busy and ratios against Python-loop baselines will be inflated.\n"
            f"[bench {name}] This run is marked LOADED; rerun with nothing else running.\n{bar}",
            file=sys.stderr, flush=True)

  def row(self, what: str, *, jaxlab_s: float | None = None, baseline_s: float | None = None,
          ratio: float | None = None, goal: float | None = None, **extra: Any) -> dict[str, Any]:
    """Records one comparison; ``ratio`` defaults to ``baseline_s / jaxlab_s``."""
    if ratio is None and jaxlab_s and baseline_s:
      ratio = baseline_s / jaxlab_s
    r = {"what": what, "jaxlab_s": jaxlab_s, "baseline_s": baseline_s, "ratio": ratio,
         "goal": goal, "met": None if goal is None or ratio is None else bool(ratio >= goal),
         **extra}
    self.rows.append(r)
    return r

  def finish(self) -> dict[str, Any]:
    end = machine_load()
    rec = {"bench": self.name, "args": self.args, "rows": self.rows, "load_start": self.start,
           "load_end": end, "loaded": self.loaded, "wall_s": round(time.time() - self.t0, 2),
           "cpu": hardware.cpu_summary(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
           "jax_devices": _devices()}
    print(f"[bench {self.name}] end: load average {end['load1']} / {end['load5']} / "
          f"{end['load15']}{' (LOADED run)' if self.loaded else ''}", flush=True)
    for r in self.rows:
      if r["ratio"] is not None:
        goal = "" if r["goal"] is None else f" (goal >= {r['goal']}x: {'met' if r['met'] else 'NOT met'})"
        print(f"[bench {self.name}] {r['what']}: {r['ratio']:.2f}x{goal}", flush=True)
    if self.json_path:
      with open(self.json_path, "a") as f:
        f.write(json.dumps(rec, default=float) + "\n")
    return rec


def _devices() -> str:
  mod = sys.modules.get("jax")
  if mod is None:
    return "jax not imported"
  try:
    ds = mod.devices()
    return f"{len(ds)} x {ds[0].device_kind}"
  except Exception:  # pragma: no cover
    return "unknown"


def markdown_table(records: list[dict[str, Any]]) -> str:
  """One Markdown table over ``Recorder`` JSON records (what ``scripts/bench_all.sh`` writes)."""
  lines = ["| benchmark | comparison | jaxlab | baseline | ratio | goal | compile (s) | load at start |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  def fmt(t):
    if t is None:
      return "-"
    return f"{1e6 * t:.1f} us" if t < 1e-3 else f"{1e3 * t:.1f} ms" if t < 1 else f"{t:.2f} s"

  for rec in records:
    load = f"{rec['load_start']['load1']} on {rec['load_start']['cores']} cores"
    if rec.get("loaded"):
      load += " **(LOADED)**"
    for r in rec["rows"]:
      ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.2f}x"
      goal = "-" if r.get("goal") is None else (
        f">= {r['goal']}x " + ("met" if r.get("met") else "**not met**"))
      comp = "-" if r.get("compile_s") is None else f"{r['compile_s']:.2f}"
      lines.append(f"| {rec['bench']} | {r['what']} | {fmt(r.get('jaxlab_s'))} | "
                   f"{fmt(r.get('baseline_s'))} | {ratio} | {goal} | {comp} | {load} |")
  return "\n".join(lines)


def wait_for_quiet(limit: float = LOAD_LIMIT, max_wait_s: float = 300.0, poll_s: float = 5.0) -> float:
  """Sleeps until the 1-minute load is at most ``limit`` (or ``max_wait_s`` passes); returns it.

  A finished benchmark leaves its own load in the 1-minute average; waiting keeps the next one
  from being marked loaded by its predecessor.
  """
  t0 = time.time()
  while machine_load()["load1"] > limit and time.time() - t0 < max_wait_s:
    time.sleep(poll_s)
  return machine_load()["load1"]


def _main(argv: list[str]) -> int:
  if argv[:1] == ["table"] and len(argv) == 2:
    with open(argv[1]) as f:
      print(markdown_table([json.loads(line) for line in f if line.strip()]))
    return 0
  if argv[:1] == ["wait"]:
    limit = float(argv[2]) if len(argv) > 2 else LOAD_LIMIT
    print(f"load {wait_for_quiet(limit, max_wait_s=float(argv[1]) if len(argv) > 1 else 300.0)}")
    return 0
  print("usage: python -m jaxlab.core.bench table BENCHMARKS.json | wait [MAX_SECONDS [LOAD]]",
        file=sys.stderr)
  return 2


if __name__ == "__main__":
  sys.exit(_main(sys.argv[1:]))
