"""QVix and the B.5 controls on the offline stand-in LVLM (3 training seeds).

Pre-question writer: this stand-in study uses the **few-shot** writer by default
(``FEWSHOT``: all 4 hand-written demonstrations as prior chat turns, then the released
template), because SmolLM2-135M-Instruct with the released zero-shot template writes parsable
"Pre-question k:" lines for 2 of 48 items, with 4 demos for 48 of 48 (docs/qvix.md, section 5;
4 was the best of 0/2/3/4 shots on the first 48 evaluation items' format metrics).
The released zero-shot prompt stays in the study as the "qvix_zeroshot" control condition;
``--set prequestion_shots=0`` restores the release's writer (``BundledConfig``'s default).
"""

import pathlib

from jaxlab.methods.qvix import bundled, standin_train

DESCRIPTION = "QVix vs baseline and controls on a jaxlab-trained stand-in LVLM (generated scenes)"
CLAIM = ("Paper: LLM-written pre-questions in the prompt help an LVLM answer image questions "
         "zero-shot in one pass. Here (small offline reproduction): a CLIP-stand-in + "
         "SmolLM2-135M LVLM trained by jaxlab answers held-out generated multiple-choice scene "
         "questions under baseline, QVix, irrelevant pre-questions, length-matched filler, "
         "answered-first two-pass and all 4 templates; accuracy with 95% CIs. It tests the "
         "pipeline and whether question context helps a tiny model, not the paper's LVLMs.")


# The bundled stand-in study only (not the library default, not qvix-scienceqa): demos first.
FEWSHOT = {"prequestion_shots": 4, "shot_style": "chat", "zeroshot_control": True}


def get_config(smoke: bool = False) -> bundled.BundledConfig:
  if smoke:  # the tiny random decoder has no chat template: demos as a one-message prefix
    return bundled.BundledConfig(
      decoder="tiny-random", seeds=(0,), n_caption=16, n_vqa=16, n_eval=8,
      align=standin_train.StageConfig(stage="align", steps=2, batch=4, ckpt_every=2),
      tune=standin_train.StageConfig(stage="tune", steps=2, batch=4, lora_rank=2, ckpt_every=2),
      templates=("hand_v1", "gptrewrite_v2"), llm_max_new_tokens=12, max_new_tokens=4,
      batch_size=4, cache="runs/qvix-smoke-cache", prequestion_shots=2, shot_style="prefix",
      zeroshot_control=True, vision_tower="random")
  return bundled.BundledConfig(**FEWSHOT)


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
  w = result.get("prequestion_writer", {})
  parsed = ", ".join(f"{t} {100 * v:.0f}%"
                     for t, v in result.get("prequestions_parsed_any_frac", {}).items())
  towers = sorted({s["vision_tower"] for s in result.get("standin", {}).values()})
  return "\n".join([
    f"{result['n_items']} held-out items x seeds {result['seeds']}; chance "
    f"{100 * result['chance_acc']:.1f}%. Small offline reproduction (stand-in LVLM).",
    f"Vision tower: {', '.join(towers)}"
    + (" (no trained CLIP features)" if "random-frozen" in towers else "") + ".",
    f"Pre-question writer: {w.get('shots', 0)} hand-written demos ({w.get('shot_style')}), "
    f"parse mode {w.get('parse_mode')}; replies with >= 1 parsed pre-question: {parsed}.", "",
    "| condition | accuracy % (mean +- std over seeds) | pooled 95% CI | vs baseline (paired) |",
    "|---|---|---|---|", *rows, "",
    "QVix minus each control, paired over the same item-answers (points, 95% CI): " + "; ".join(
      f"{n} {100 * d[0]:+.1f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]"
      for n, d in result.get("qvix_vs_controls_pooled", {}).items()) + "."])
