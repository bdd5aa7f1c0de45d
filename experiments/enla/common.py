"""Shared glue of the EnPrompt toy-suite experiments: config, protocol runs, report."""

import dataclasses
import pathlib
from typing import Any

import numpy as np

from jaxlab.core import errors
from jaxlab.core.metrics import MetricsWriter
from jaxlab.core.plot import heatmap, lines
from jaxlab.data import toy_suite
from jaxlab.methods.enla import protocols, runner
from jaxlab.methods.enla.config import ENSEMBLE, METHODS, PromptConfig
from jaxlab.models import clip_standin
from jaxlab.models.clip import CLIP
from jaxlab.models.clip_tokenizer import CLIPTokenizer

LABEL = ("small-model offline study (toy analogue, reconstructed EnPrompt) - not the paper's "
         "ViT-B/16 numbers; pretrained CLIP weights are absent offline")
# Published base-to-novel averages, 11 datasets, ViT-B/16, 16 shots (spec A.5).
ANCHORS = {"zero_shot": (69.34, 74.22, 71.70), "coop": (82.69, 63.22, 71.66),
           "cocoop": (80.47, 71.69, 75.83), "plot": (81.24, 72.98, 76.89)}
# Ablations (spec A.7 and issue 22): label -> PromptConfig overrides (EnPrompt unless named).
ABLATIONS: dict[str, dict[str, Any]] = {
  # step-0 rows: every learner evaluated at its init (EnPrompt and CoOp must equal zero-shot)
  "coop_step0": {"method": "coop", "steps": 0},
  "cocoop_step0": {"method": "cocoop", "steps": 0},
  "plot_step0": {"method": "plot", "steps": 0},
  "enprompt_step0": {"steps": 0},
  # paper-style
  "enprompt_no_ot": {"ot_mode": "none"},
  "enprompt_no_strength": {"strength": "none"},
  "enprompt_no_enla": {"enla_kind": "none"},
  "enprompt_enla_to_coop": {"enla_kind": "coop"},
  # ours
  "enprompt_uniform_plan": {"ot": {"grad_mode": "uniform"}},
  "enprompt_const_strength": {"strength": "class_mean"},  # the old constant-input feature
  "enprompt_ungated": {"vprompt_gate": "none"},  # MaPLe's ungated prompts: step 0 != zero-shot
  "enprompt_ot_loss_0.1": {"ot_mode": "loss", "ot_lambda": 0.1},
  "enprompt_ot_loss_1": {"ot_mode": "loss", "ot_lambda": 1.0},
  "enprompt_ot_loss_10": {"ot_mode": "loss", "ot_lambda": 10.0},
  "enprompt_infer_ot": {"infer_add_ot": True},
  "enprompt_linear_id": {"enla_kind": "linear_id"},
  "enprompt_extra_block": {"enla_kind": "extra_block"},
  "enprompt_concat": {"fuse": "concat"},
  "enprompt_eps0.01": {"ot": {"epsilon": 0.01}},
  "enprompt_eps0.05": {"ot": {"epsilon": 0.05}},
  "enprompt_eps0.5": {"ot": {"epsilon": 0.5}},
  "enprompt_lr0.002": {"lr": 2e-3},  # EnPrompt at CoOp's lr
  "zero_shot_ensemble": {"method": "zero_shot", "templates": ENSEMBLE},
  "coop_ensemble": {"method": "coop", "templates": ENSEMBLE},
  "enprompt_ensemble": {"templates": ENSEMBLE},
  "enprompt_unrolled": {"ot": {"grad_mode": "unrolled", "iterations": 30}},
}
STEP0 = ("coop_step0", "cocoop_step0", "plot_step0", "enprompt_step0")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
  """Which protocols, datasets and methods to run on which stand-in."""
  standin: clip_standin.StandInConfig = clip_standin.QUICK
  prompt: PromptConfig = PromptConfig(steps=100)
  methods: tuple[str, ...] = METHODS
  ablations: tuple[str, ...] = ()
  # base-to-novel sets the ablations run on (with zero-shot, CoOp and EnPrompt beside them);
  # () = every b2n set
  ablation_datasets: tuple[str, ...] = ()
  ablation_baselines: tuple[str, ...] = ("zero_shot", "coop", "enprompt")
  seeds: int = 3
  shots: int = 16
  b2n_datasets: tuple[str, ...] = ("fashion_mnist", "colour_shapes")
  few_shot_dataset: str = ""  # "" skips the protocol
  few_shot_list: tuple[int, ...] = (1, 2, 4, 8, 16)
  few_shot_methods: tuple[str, ...] = ("zero_shot", "linear_probe", "coop", "enprompt")
  cross_source: str = ""
  cross_targets: tuple[str, ...] = ("shapes", "colours", "size_shapes")
  domain_source: str = ""
  corruptions: tuple[str, ...] = toy_suite.CORRUPTIONS
  transfer_methods: tuple[str, ...] = ("zero_shot", "coop", "cocoop", "plot", "enprompt")
  train_limit: int = 5000
  test_limit: int = 1000


def backbone(config: Config, out_dir: pathlib.Path) -> tuple[runner.Backbone, dict]:
  ccfg, params, info = clip_standin.get_or_train(config.standin, out_dir)
  return runner.Backbone(CLIP(ccfg), params, CLIPTokenizer(ccfg.text.context_length)), info


def run_suite(config: Config, out_dir: pathlib.Path) -> dict:
  """Runs the configured protocols and writes metrics.jsonl and plots."""
  out_dir = pathlib.Path(out_dir)
  bb, info = backbone(config, out_dir)
  runs = out_dir / "runs"
  unknown = [a for a in config.ablations if a not in ABLATIONS]
  if unknown:
    raise errors.ConfigError(f"unknown ablations {unknown}; choose from {sorted(ABLATIONS)}")
  abl = {a: dict(ABLATIONS[a]) for a in config.ablations}
  on_all = not config.ablation_datasets
  methods = runner.method_configs(config.prompt, config.methods, abl if on_all else None)
  result: dict[str, Any] = {"label": LABEL, "standin": info, "shots": config.shots,
                            "seeds": config.seeds}
  writer = MetricsWriter(out_dir)
  if config.b2n_datasets:
    per = {d: runner.base_to_novel(bb, d, methods, config.shots, config.seeds, runs,
                                   config.train_limit, config.test_limit)
           for d in config.b2n_datasets}
    result["base_to_novel"] = per
    result["base_to_novel_average"] = _b2n_average(per, methods)
    for i, (m, row) in enumerate(result["base_to_novel_average"].items()):
      writer.write(i, {f"b2n/{m}/{k}": v for k, v in row.items() if v is not None})
  if config.ablations and not on_all:
    amethods = runner.method_configs(config.prompt, config.ablation_baselines, abl)
    per = {d: runner.base_to_novel(bb, d, amethods, config.shots, config.seeds, runs,
                                   config.train_limit, config.test_limit)
           for d in config.ablation_datasets}
    result["ablations"] = per
    result["ablations_average"] = _b2n_average(per, amethods)
  pick = lambda names: {m: c for m, c in methods.items() if c.method in names
                        and m in names}
  if config.few_shot_dataset:
    result["few_shot"] = runner.few_shot(
      bb, config.few_shot_dataset, pick(config.few_shot_methods), config.few_shot_list,
      config.seeds, runs, config.train_limit, config.test_limit)
    _few_shot_plot(result["few_shot"], config, out_dir)
  if config.cross_source:
    targets = {t: toy_suite.load(t, "test", limit=config.test_limit, seed=1)
               for t in (config.cross_source,) + config.cross_targets}
    result["cross_dataset"] = runner.transfer(
      bb, config.cross_source, targets, pick(config.transfer_methods), config.shots,
      config.seeds, runs, same_classes=False, train_limit=config.train_limit)
  if config.domain_source:
    targets = runner.domain_targets(config.domain_source, config.corruptions, config.test_limit)
    result["domain_shift"] = runner.transfer(
      bb, config.domain_source, targets, pick(config.transfer_methods), config.shots,
      config.seeds, runs, same_classes=True, train_limit=config.train_limit)
  return result


def _b2n_average(per: dict, methods: dict) -> dict[str, dict]:
  """Spec A.4's Average row (HM of the averaged B and N), plus the std over seeds of the
  per-seed averaged B, N and HM."""
  out = {}
  for m in methods:
    rows = [per[d][m] for d in per]
    if any(r["novel"] is None for r in rows):
      out[m] = {"base": float(np.mean([r["base"]["mean"] for r in rows])), "novel": None,
                "hm": None}
      continue
    out[m] = protocols.average_row([r["base"]["mean"] for r in rows],
                                   [r["novel"]["mean"] for r in rows])
    b = np.mean([r["base"]["seeds"] for r in rows], 0)
    n = np.mean([r["novel"]["seeds"] for r in rows], 0)
    if len(b) == len(n):
      hm = [protocols.harmonic_mean(x, y) for x, y in zip(b, n)]
      out[m].update(base_std=float(np.std(b)), novel_std=float(np.std(n)),
                    hm_std=float(np.std(hm)))
  return out


def _few_shot_plot(fs: dict, config: Config, out_dir: pathlib.Path) -> None:
  ks = list(config.few_shot_list)
  curves = {m: [fs[m][str(k)]["mean"] for k in ks] for m in fs}
  lines(out_dir / "few_shot.png", ks, curves, xlabel="shots per class", ylabel="accuracy (%)",
        title=f"few-shot, {config.few_shot_dataset} ({config.seeds} seeds)")


def b2n_heatmap(result: dict, out_dir: pathlib.Path) -> None:
  per = result.get("base_to_novel")
  if not per:
    return
  datasets = list(per)
  methods = [m for m in result["base_to_novel_average"]
             if result["base_to_novel_average"][m]["hm"] is not None]
  grid = np.array([[per[d][m]["hm"] for d in datasets] for m in methods])
  heatmap(out_dir / "base_to_novel_hm.png", grid, xlabel="dataset: " + ", ".join(datasets),
          ylabel="method: " + ", ".join(methods), title="base-to-novel HM (%)")


def _fmt(stat: dict | None) -> str:
  return "-" if stat is None else f"{stat['mean']:.1f} ± {stat['std']:.1f}"


def _b2n_table(per_set: dict, average: dict, title: str, shots: int) -> list[str]:
  out = [f"**{title}** ({shots} shots, mean ± std over seeds; Avg = HM of averaged B and N, "
         "± = std over seeds of the per-seed averages)", "",
         "| method | " + " | ".join(f"{d} B / N / HM" for d in per_set)
         + " | Avg B / N / HM | ViT-B/16 published B / N / HM |",
         "|---" * (len(per_set) + 3) + "|"]
  for m, avg in average.items():
    cells = []
    for per in per_set.values():
      r = per[m]
      hm = "-" if r["hm"] is None else f"{r['hm']:.1f}"
      cells.append(f"{_fmt(r['base'])} / {_fmt(r['novel'])} / {hm}")
    sd = lambda k: f" ± {avg[k + '_std']:.1f}" if k + "_std" in avg else ""
    a = (f"{avg['base']:.1f}{sd('base')} / "
         + ("-" if avg["novel"] is None else f"{avg['novel']:.1f}{sd('novel')}")
         + " / " + ("-" if avg["hm"] is None else f"{avg['hm']:.1f}{sd('hm')}"))
    anchor = ANCHORS.get(m)
    anchor = " / ".join(f"{x:.2f}" for x in anchor) if anchor else "-"
    out.append(f"| {m} | " + " | ".join(cells) + f" | {a} | {anchor} |")
  return out + [""]


def report(result: dict) -> str:
  """Markdown tables for REPORT.md / docs."""
  out = [f"_{result['label']}_", ""]
  for key, avg_key, title in [("base_to_novel", "base_to_novel_average", "Base-to-novel"),
                               ("ablations", "ablations_average", "Ablations, base-to-novel")]:
    if key in result:
      out += _b2n_table(result[key], result[avg_key], title, result.get("shots", 16))
  for key, title in [("few_shot", "Few-shot"), ("cross_dataset", "Cross-dataset"),
                     ("domain_shift", "Domain shift")]:
    if key not in result:
      continue
    cols = list(next(iter(result[key].values())))
    if all(c.isdigit() for c in cols):  # shots: numeric order (result.json sorts keys)
      cols.sort(key=int)
    out += [f"**{title}** (accuracy %, mean ± std over seeds)", "",
            "| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m, row in result[key].items():
      out.append(f"| {m} | " + " | ".join(_fmt(row[c]) for c in cols) + " |")
    out.append("")
  return "\n".join(out)
