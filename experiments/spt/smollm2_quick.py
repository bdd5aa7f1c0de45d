"""SPT on SmolLM2-135M-Instruct, quick version (<= 5 minutes on 2 CPU cores)."""

import pathlib

from jaxlab.methods.spt import pipeline, report as report_lib

DESCRIPTION = "SPT quick check on SmolLM2-135M-Instruct: localise, knock out, tune top-k heads"
CLAIM = ("Paper (Chen et al., ICML 2024): a few heads drive 'Are you sure?' sycophancy and "
         "tuning only them mitigates it. Quick check: the path-patching gap is real, top-k "
         "knockout moves the apology proxy more than random-k, and a few SPT steps change "
         "only the selected heads (small-model offline reproduction; numbers are noisy).")


def get_config(smoke: bool = False) -> pipeline.StudyConfig:
  if smoke:
    return pipeline.StudyConfig(
      n_localize=4, patch_metrics=("sorry_glad",), k=4, knockout_ks=(4,),
      n_random_knockout=1, n_random_gen=0, arms=("spt",), n_train_arith=8, steps=1,
      batch_size=4, n_eval=2, gen_new=(4, 2), heldout=False, n_kl=2, n_probe=4,
      repatch=False, model="tiny-random")
  return pipeline.StudyConfig(
    n_localize=8, patch_metrics=("sorry_glad",), k=8, knockout_ks=(8,),
    n_random_knockout=3, n_random_gen=1, arms=("spt",), n_train_arith=16, steps=3,
    batch_size=4, lr=3e-4, n_eval=4, gen_new=(12, 4), heldout=False, n_kl=4, n_probe=16,
    repatch=False)


def run(config: pipeline.StudyConfig, out_dir: pathlib.Path) -> dict:
  return pipeline.run_study(config, pathlib.Path(out_dir))


def report(result: dict) -> str:
  return report_lib.markdown(result)
