"""QVix and the B.5 controls on the offline stand-in LVLM (3 training seeds)."""

import pathlib

from jaxlab.methods.qvix import bundled, standin_train

DESCRIPTION = "QVix vs baseline and controls on a jaxlab-trained stand-in LVLM (generated scenes)"
CLAIM = ("Paper: LLM-written pre-questions in the prompt help an LVLM answer image questions "
         "zero-shot in one pass. Here (small offline reproduction): a CLIP-stand-in + "
         "SmolLM2-135M LVLM trained by jaxlab answers held-out generated multiple-choice scene "
         "questions under baseline, QVix, irrelevant pre-questions, length-matched filler, "
         "answered-first two-pass and all 4 templates; accuracy with 95% CIs. It tests the "
         "pipeline and whether question context helps a tiny model, not the paper's LVLMs.")


def get_config(smoke: bool = False) -> bundled.BundledConfig:
  if smoke:
    return bundled.BundledConfig(
      decoder="tiny-random", seeds=(0,), n_caption=16, n_vqa=16, n_eval=8,
      align=standin_train.StageConfig(stage="align", steps=2, batch=4, ckpt_every=2),
      tune=standin_train.StageConfig(stage="tune", steps=2, batch=4, lora_rank=2, ckpt_every=2),
      templates=("hand_v1", "gptrewrite_v2"), llm_max_new_tokens=12, max_new_tokens=4,
      batch_size=4, cache="runs/qvix-smoke-cache")
  return bundled.BundledConfig()


def run(config: bundled.BundledConfig, out_dir: pathlib.Path) -> dict:
  return bundled.run_bundled(config, out_dir)


def report(result: dict) -> str:
  rows = []
  for n, r in result["conditions"].items():
    lo, hi = r["ci95_pooled"]
    d = r.get("diff_vs_baseline_pooled")
    diff = "" if d is None else f"{100 * d[0]:+.1f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]"
    rows.append(f"| {n} | {100 * r['acc_mean']:.1f} +- {100 * r['acc_std']:.1f} | "
                f"[{100 * lo:.1f}, {100 * hi:.1f}] | {diff} |")
  return "\n".join([
    f"{result['n_items']} held-out items x seeds {result['seeds']}; chance "
    f"{100 * result['chance_acc']:.1f}%. Small offline reproduction (stand-in LVLM).", "",
    "| condition | accuracy % (mean +- std over seeds) | pooled 95% CI | vs baseline (paired) |",
    "|---|---|---|---|", *rows])
