"""The study's run / report glue; stage results are cached so a rerun resumes."""

import json
import pathlib
import time

import numpy as np

from jaxlab.core.metrics import MetricsWriter, to_python, write_json
from jaxlab.interp.attention import format_heads
from jaxlab.methods.arith_heads import study, tune
from jaxlab.methods.arith_heads.config import Config, check
from jaxlab.tuning import verdict


class Stages:
  """JSON cache of finished stages in ``out_dir/stages`` (the study's resume point)."""

  def __init__(self, out_dir: pathlib.Path):
    self.dir = pathlib.Path(out_dir) / "stages"
    self.dir.mkdir(parents=True, exist_ok=True)

  def get(self, name: str):
    path = self.dir / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None

  def put(self, name: str, value) -> dict:
    write_json(self.dir / f"{name}.json", value)
    return json.loads(json.dumps(to_python(value)))

  def run(self, name: str, fn):
    cached = self.get(name)
    return cached if cached is not None else self.put(name, fn())


def run(config: Config, out_dir: pathlib.Path) -> dict:
  """Every stage of spec h.H1 in order; returns the summary numbers."""
  check(config)
  out_dir = pathlib.Path(out_dir)
  stages, writer = Stages(out_dir), MetricsWriter(out_dir)
  t0 = time.perf_counter()
  cfg, params, tok = study.load(config)
  load_s = time.perf_counter() - t0
  acc = stages.run("accuracy", lambda: study.base_accuracy(cfg, params, tok, config))
  writer.write(0, {f"acc_{k}": v for k, v in acc.items()})
  eq = study.arith_set(tok, config, "equation", config.ops[0])
  patch_set, _ = study.correct_subset(cfg, params, eq, config.n_patch)
  patch = stages.run("patching", lambda: study.patch_stage(cfg, params, patch_set, config, out_dir))
  ranked = np.asarray(patch["head_scores"])
  _maybe_heatmap(out_dir, ranked, len(patch_set))
  writer.write(1, {"patch_seconds": patch["seconds"], "min_head_score": patch["min_score"]})
  knock_set, _ = study.correct_subset(cfg, params, eq, config.n_knock)
  knock = stages.run("knockout", lambda: study.knockout_stage(cfg, params, knock_set, ranked,
                                                              config))
  transfer = stages.run("transfer", lambda: study.transfer_stage(cfg, params, tok, ranked, config))
  tuned = {}
  if config.tune_arms:
    cached = stages.get("tuning") or {}
    tuned = tune.tuning_stage(cfg, params, tok, ranked, np.asarray(patch["mlp_scores"]),
                              patch_set, config, writer=writer, cached=cached,
                              save=lambda r: stages.put("tuning", r), out_dir=out_dir)
    tuned = stages.put("tuning", tuned)
    _verdict(out_dir, tuned)
  write_json(out_dir / "head_scores.json", {"head_scores": ranked,
                                            "mlp_scores": patch["mlp_scores"],
                                            "top_heads": patch["top_heads"]})
  return _summary(config, cfg, acc, patch, knock, transfer, tuned, load_s)


def _ci(x):
  return x if isinstance(x, (list, tuple)) else (x, None, None)


def _verdict(out_dir, tuned: dict) -> None:
  """``verdict.png``: held-out target accuracy vs KL per arm at its best lr."""
  arms = {}
  for name, v in tuned.items():
    if name == "selected_heads":
      continue
    arms[name] = {"target": _ci(v.get("target_acc_ci", v["target_acc"])), "kl": _ci(v["kl"]),
                  "per_lr": [(lr, r["kl"], r["target_acc"])
                             for lr, r in v.get("per_lr", {}).items()]}
  verdict.frontier(out_dir / "verdict.png", arms, target="held-out exact match (multi-digit)",
                   title="arithmetic heads: best lr per arm (CIs); lines: every lr")


def _maybe_heatmap(out_dir, ranked, n):
  if not (out_dir / "patching_heads.png").exists():
    from jaxlab.interp.attention import head_heatmap  # noqa: PLC0415

    head_heatmap(out_dir / "patching_heads.png", ranked, title=f"path patching, {n} prompts",
                 label="% change of logit(C)")


def _summary(config, cfg, acc, patch, knock, transfer, tuned, load_s) -> dict:
  keep = ("n_prompts", "seconds", "min_score", "n_below_5pct", "share_below_5pct",
          "n_heads_80pct", "share_heads_80pct", "concentration_top8", "concentration_top11",
          "cf_relative_change", "m_ref_mean", "m_cf_mean", "atp_agreement",
          "attn_operands_top8", "attn_operands_other", "attn_operator_top8",
          "attn_operator_other")
  return {
    "model": config.model, "n_heads": cfg.n_layers * cfg.n_heads, "load_seconds": load_s,
    "accuracy": acc,
    "patching": {k: patch[k] for k in keep},
    "top_heads": format_heads(patch["top_heads"][:16]),
    "mlp_scores": patch["mlp_scores"],
    "knockout": knock, "transfer": transfer,
    "tuning": {k: {kk: vv for kk, vv in v.items() if kk != "target_hits"}
               for k, v in tuned.items() if k != "selected_heads"},
  }


def report(result: dict) -> str:
  """Markdown for REPORT.md."""
  p, k = result["patching"], result["knockout"]
  lines = [
    f"Model {result['model']} ({result['n_heads']} heads). 4-shot accuracy: "
    + ", ".join(f"{a} {v:.2f}" for a, v in result["accuracy"].items()) + ".",
    f"Path-patching map on {p['n_prompts']} correct prompts in {p['seconds']:.1f} s (fast "
    f"path). Counterfactual (null operator) changes logit(C) by {p['cf_relative_change']:.1f}%."
    f" Strongest head {p['min_score']:.2f}%; heads below -5%: {p['n_below_5pct']} "
    f"({100 * p['share_below_5pct']:.1f}%); {p['n_heads_80pct']} heads "
    f"({100 * p['share_heads_80pct']:.1f}%) hold 80% of the negative effect; top-8 hold "
    f"{100 * p['concentration_top8']:.0f}%. Top heads: {result['top_heads']}.",
    f"AtP vs exact: Spearman {p['atp_agreement']['spearman']:.2f}, top-8 overlap "
    f"{p['atp_agreement']['top8_overlap']:.2f}.",
    "",
    "| knockout (mean) | accuracy | random-k accuracy (95% CI) |",
    "|---|---|---|",
    f"| none | {k['base_acc']:.2f} | |",
  ]
  for key, v in k.items():
    if key.startswith("top"):
      lo, hi = v["random_acc_ci"]
      lines.append(f"| {key} | {v['acc']:.2f} | {v['random_acc_mean']:.2f} [{lo:.2f}, {hi:.2f}] |")
  if result["transfer"]:
    lines += ["", "| transfer (equation-ranked heads) | base acc (all) | top-k knockout acc | "
              "random-k acc |", "|---|---|---|---|"]
    for name, v in result["transfer"].items():
      tk = [x for x in v if x.startswith("top")]
      if not tk:
        continue
      t = v[tk[0]]
      lines.append(f"| {name} {tk[0]} | {v['base_acc_all']:.2f} | {t['acc']:.2f} | "
                   f"{t['random_acc_mean']:.2f} |")
  if result["tuning"]:
    lines += ["", "| arm | trainable | best lr | target acc held-out [95% CI] | "
              "over seeds [t-CI] | 4-shot acc | KL [95% CI over seeds] | probe acc |",
              "|---|---|---|---|---|---|---|---|"]
    for arm, v in result["tuning"].items():
      probe = v.get("probe_acc")
      acc = verdict.triple(_ci(v.get("target_acc_ci", v["target_acc"])))
      kl = verdict.triple(_ci(v["kl"]))
      sd = verdict.triple(v.get("target_acc_seed_ci") or (float("nan"),) * 3)
      seeds = (f"{sd[0]:.3f} [{sd[1]:.3f}, {sd[2]:.3f}] (n={v['n_seeds']})"
               if v.get("n_seeds", 0) > 1 else "-")
      lines.append(f"| {arm} | {v.get('trainable', 0):,} | {v.get('best_lr', '-')} | "
                   f"{acc[0]:.3f} [{acc[1]:.3f}, {acc[2]:.3f}] | {seeds} | "
                   f"{v['fewshot_acc']:.2f} | "
                   f"{kl[0]:.2e} [{kl[1]:.1e}, {kl[2]:.1e}] | "
                   f"{'-' if probe is None else f'{probe:.2f}'} |")
  rp = result["tuning"].get("heads", {}).get("repatch") if result["tuning"] else None
  if rp:
    lines.append(f"\nRe-patching after pinpoint tuning: selected heads' mean score "
                 f"{rp['before_mean']:.2f}% -> {rp['after_mean']:.2f}%.")
  return "\n".join(lines)
