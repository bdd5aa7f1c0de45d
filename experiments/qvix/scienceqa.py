"""QVix on a user's local ScienceQA and LLaVA weights; smoke on the generated set."""

import pathlib

from jaxlab.methods.qvix import study

DESCRIPTION = "QVix ScienceQA protocol (local ScienceQA + any local LLaVA checkpoint)"
CLAIM = ("Paper (Yang et al., arXiv 2312.01598): pre-questions from an LLM in the LVLM prompt "
         "raise zero-shot ScienceQA-IMG accuracy (leaderboard: QVix 55.0 average, LVLM not "
         "stated). Needs llava=<dir> and a local ScienceQA; the smoke run uses the generated "
         "set, a canned pre-question reply and a tiny random LLaVA (pipeline check only).")


def get_config(smoke: bool = False) -> study.ScienceQAConfig:
  if smoke:
    return study.ScienceQAConfig(
      data="generated", generated_n=6, sample_num=0, llava="tiny-random", llm="canned",
      llm_max_new_tokens=16, max_new_tokens=6, batch_size=4,
      conditions=("baseline", "qvix", "irrelevant", "filler", "answered_first"))
  return study.ScienceQAConfig()


def run(config: study.ScienceQAConfig, out_dir: pathlib.Path) -> dict:
  return study.run_scienceqa(config, out_dir)


def report(result: dict) -> str:
  rows = [f"| {n} | {100 * r['acc']:.1f} [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}] |"
          for n, r in result["conditions"].items()]
  return "\n".join([f"{result['n_items']} items, pre-questions from `{result['llm']}`.", "",
                    "| condition | accuracy % [95% CI] |", "|---|---|", *rows, "",
                    f"Released (ScienceQA leaderboard, QVix zero-shot): "
                    f"{result['released']['scienceqa_img_avg_leaderboard']}"])
