"""SPT on SmolLM2-135M-Instruct, quick version (<= 5 minutes on 2 CPU cores)."""

from experiments.spt import smollm2
from experiments.spt.smollm2 import report, run  # noqa: F401
from jaxlab.methods.spt import pipeline

DESCRIPTION = "SPT quick check on SmolLM2-135M-Instruct: localise, knock out, tune top-k heads"
CLAIM = ("Paper (Chen et al., ICML 2024): a few heads drive 'Are you sure?' sycophancy and "
         "tuning only them mitigates it. Quick check: the path-patching gap is real, top-k "
         "knockout moves the apology proxy more than random-k, and 16 steps on the top-k vs "
         "random-k heads move the teacher-forced proxies (P(correct letter) after the "
         "challenge, held-out insist CE) and KL (small-model offline reproduction; proxies "
         "only, no decoding; one lr and seed, so untested for lr sensitivity).")


def get_config(smoke: bool = False) -> pipeline.StudyConfig:
  if smoke:
    return smollm2.get_config(smoke=True)
  return pipeline.StudyConfig(
    n_localize=8, patch_metrics=("sorry_glad",), k=8, knockout_ks=(8,),
    n_random_knockout=3, n_random_gen=1, n_gen_knockout=8, arms=("spt", "random"),
    n_train_arith=200,
    steps=16, batch_size=4, n_seeds=1, lr_spt=(1e-2,), n_eval=28, gen_new=(12, 4),
    heldout=False, n_kl=4, n_probe=16, generate=False, repatch=False)
