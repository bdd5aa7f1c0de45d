"""Pool the decoded seeds of ``spt-smollm2`` arms from several run folders: table + plot.

Training and decoding a seed costs 20-25 minutes on the 2-core CPU (decoding alone about 8),
so the seeds of one arm often come from several runs (``--set first_seed=S --set n_seeds=1``,
or ``gen_seeds`` > 1 in one run).
This script reads each run's ``stages/arm_<arm>.json`` (decoded Truthfulness and Confidence
of every decoded seed at the arm's best lr) and, per seed, the KL on held-out text from that
lane's ``arms/<arm>/<index>-<hash>/rows.json``. It prints a Markdown table with a Student-t
95% interval over seeds and draws Truthfulness against KL (``tuning.verdict.frontier``), the
base model at KL 0.

Run (the command behind docs/img/spt_verdict_decoding_3seeds.png):
  python scripts/spt_seeds.py --out docs/img/spt_verdict_decoding_3seeds.png \\
    --arm "SPT top-8=spt:runs/spt-cpu-spt3,runs/spt-seed2" \\
    --arm "random-8=random:runs/spt-cpu-random3,runs/spt-seed2" \\
    --arm "full FT=full:runs/spt-cpu-full,runs/spt-full-s1,runs/spt-full-s2" \\
    --arm "LoRA r16=lora:runs/spt-cpu-lora,runs/spt-lora-s1,runs/spt-lora-s2"
"""

import argparse
import collections
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxlab.tuning import evaluate as tevaluate  # noqa: E402
from jaxlab.tuning import verdict  # noqa: E402


def _load(path: pathlib.Path) -> dict:
  if not path.exists():
    raise SystemExit(f"spt_seeds: {path} is missing; is this an spt-smollm2 run folder whose "
                     "arm finished (jaxlab run spt-smollm2 ... --set generate=true)?")
  return json.loads(path.read_text())


def run_seeds(run: pathlib.Path, arm: str) -> list[dict]:
  """Per decoded seed of ``arm`` in ``run``: seed, lr, truthfulness, confidence, kl."""
  cfg = _load(run / "config.json")["config"]
  stage = _load(run / "stages" / f"arm_{arm}.json")
  if cfg.get("seed_protocol", "grid") != "grid" or cfg.get("lane_chunk") != 1:
    raise SystemExit(f"spt_seeds: {run} needs seed_protocol=grid and lane_chunk=1 (one lane "
                     "per folder), so that a lane's folder index is its place in the grid")
  first, best = int(cfg.get("first_seed") or 0), float(stage["best_lr"])
  ev = stage["eval"]
  truth = stage.get("truthfulness_seeds", [ev["truthfulness"]])
  conf = stage.get("confidence_seeds", [ev["confidence"]])
  lanes = [(float(lr), int(s)) for lr, s in stage["lanes"]]
  out = []
  for i, (t, c) in enumerate(zip(truth, conf)):
    seed = first + i
    idx = lanes.index((best, seed))
    found = sorted((run / "arms" / arm).glob(f"{idx}-*/rows.json"))
    if len(found) != 1:
      raise SystemExit(f"spt_seeds: expected one {run}/arms/{arm}/{idx}-*/rows.json for lane "
                       f"(lr {best:g}, seed {seed}), found {len(found)}")
    kl = float(json.loads(found[0].read_text())[0]["kl"])
    out.append({"seed": seed, "lr": best, "truthfulness": float(t), "confidence": float(c),
                "kl": kl})
  return out


def pool(spec: str) -> tuple[str, str, list[dict]]:
  """``"label=arm:run1,run2"`` -> (label, arm, seeds of every run; a seed twice is refused)."""
  try:
    label, rest = spec.split("=", 1)
    arm, runs = rest.split(":", 1)
  except ValueError:
    raise SystemExit(f"spt_seeds: --arm {spec!r}: write LABEL=ARM:RUN[,RUN...], e.g. "
                     "'SPT top-8=spt:runs/a,runs/b'") from None
  seeds = [s for r in runs.split(",") for s in run_seeds(pathlib.Path(r), arm)]
  dup = {seed for seed, n in collections.Counter(s["seed"] for s in seeds).items() if n > 1}
  if dup:
    raise SystemExit(f"spt_seeds: arm {label!r} has seed(s) {sorted(dup)} in two runs")
  if len({s["lr"] for s in seeds}) > 1:
    raise SystemExit(f"spt_seeds: arm {label!r} pools different lrs "
                     f"{sorted({s['lr'] for s in seeds})}; pool one lr per arm")
  return label, arm, sorted(seeds, key=lambda s: s["seed"])


def fmt(ci) -> str:
  m, lo, hi = ci
  return f"{m:.1f}" if lo != lo else f"{m:.1f} [{lo:.1f}, {hi:.1f}]"


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--arm", action="append", required=True, help="LABEL=ARM:RUN[,RUN...]")
  ap.add_argument("--out", default=None, help="PNG path for the Truthfulness-vs-KL plot")
  args = ap.parse_args(argv)
  arms, base = {}, None
  print("| arm (lr) | seeds | Truthfulness per seed | mean [t-CI] | Confidence per seed |"
        " mean [t-CI] | KL per seed | mean [t-CI] |")
  print("|---|---|---|---|---|---|---|---|")
  for spec in args.arm:
    label, arm, seeds = pool(spec)
    cols = {k: [s[k] for s in seeds] for k in ("truthfulness", "confidence", "kl")}
    ci = {k: tevaluate.seed_ci(v) for k, v in cols.items()}
    print(f"| {label} ({seeds[0]['lr']:g}) | {', '.join(str(s['seed']) for s in seeds)} | "
          f"{' / '.join(f'{v:.1f}' for v in cols['truthfulness'])} | "
          f"**{fmt(ci['truthfulness'])}** | "
          f"{' / '.join(f'{v:.1f}' for v in cols['confidence'])} | {fmt(ci['confidence'])} | "
          f"{' / '.join(f'{v:.3f}' for v in cols['kl'])} | "
          f"{ci['kl'][0]:.3f} [{ci['kl'][1]:.3f}, {ci['kl'][2]:.3f}] |")
    arms[f"{label} ({len(seeds)} seeds)"] = {"target": ci["truthfulness"], "kl": ci["kl"]}
    if base is None:
      run = pathlib.Path(spec.split(":", 1)[1].split(",")[0])
      base = _load(run / "stages" / "base.json")["eval"]
  if base is not None:
    lo, hi = base["truthfulness_ci"]
    arms = {"base": {"target": (base["truthfulness"], lo, hi), "kl": (0.0, np.nan, np.nan)},
            **arms}
  if args.out:
    print("plot:", verdict.frontier(args.out, arms, target="Truthfulness (decoded, %)",
                                    title="SPT arms by decoding: mean over seeds, t-CI"))


if __name__ == "__main__":
  main()
