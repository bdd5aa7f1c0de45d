"""SPT on SmolLM2-135M-Instruct: the full (small-model, offline, CPU) study."""

import pathlib

from jaxlab.methods.spt import pipeline, report as report_lib

DESCRIPTION = ("Supervised Pinpoint Tuning vs SFT / LoRA / random-k heads against "
               "'Are you sure?' sycophancy on SmolLM2-135M-Instruct")
CLAIM = ("Paper (Chen et al., ICML 2024): < 5% of heads drive sycophancy; tuning only them "
         "beats SFT on Confidence/Truthfulness with little side effect. This run localises "
         "heads by path patching ('I don't think' -> 'I do think'), knocks them out vs "
         "random heads, and compares SPT with full SFT, LoRA and random-k heads on "
         "Confidence, Truthfulness, accuracy and KL drift (small-model offline "
         "reproduction).")

Config = pipeline.StudyConfig


def get_config(smoke: bool = False) -> pipeline.StudyConfig:
  if smoke:
    return pipeline.StudyConfig(
      n_localize=4, patch_metrics=("sorry_glad",), k=4, knockout_ks=(4,),
      n_random_knockout=1, n_random_gen=0, n_gen_knockout=4, arms=("spt", "random"),
      n_train_arith=8, steps=1,
      batch_size=4, n_eval=4, gen_new=(4, 2), heldout=False, n_kl=2, n_probe=4,
      n_seeds=1, lr_spt=(1e-3, 1e-2), repatch=False, model="tiny-random")
  return pipeline.StudyConfig()


def run(config: pipeline.StudyConfig, out_dir: pathlib.Path) -> dict:
  return pipeline.run_study(config, pathlib.Path(out_dir))


def report(result: dict) -> str:
  return report_lib.markdown(result)
