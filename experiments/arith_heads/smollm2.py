"""Arithmetic heads on SmolLM2-135M-Instruct: the full study (spec h.H1)."""


import pathlib

from jaxlab.methods.arith_heads import experiment
from jaxlab.methods.arith_heads.config import Config

DESCRIPTION = "Arithmetic heads in SmolLM2-135M: patching map, knockout, transfer, precise SFT"
CLAIM = (
  "Paper 1 (Zhang et al., ICML 2024): a few attention heads (<5%) carry arithmetic; knocking "
  "out the top-k hurts accuracy far more than random-k; tuning only them improves math with "
  "fewer side effects than full SFT. This run measures all of it on SmolLM2-135M-Instruct "
  "(270 heads): map concentration, top-k vs random-k knockout, transfer, and pinpoint tuning "
  "vs full FT / LoRA / random-k (target accuracy, KL on held-out text, factual probes)."
)


def get_config(smoke: bool = False) -> Config:
  if smoke:
    return smoke_config()
  return Config()


def smoke_config() -> Config:
  """Tiny random decoder + word tokenizer: exercises every stage in seconds."""
  return Config(model="tiny-random", ops=("+",), templates=("equation",), draws=1,
                n_patch=8, patch_batch=None, knock_ks=(2,), random_seeds=2, n_knock=8,
                transfer_sets=(("qa", "+"),), transfer_k=2, tune_k=2,
                tune_arms=("heads",), tune_steps=2, tune_batch=4, tune_items=16,
                test_items=8, tune_digits=1, tune_seeds=1, lr_heads=(1e-2,),
                kl_passages=4, kl_length=32, tune_target="chat", repatch=True)


def run(config: Config, out_dir: pathlib.Path) -> dict:
  return experiment.run(config, pathlib.Path(out_dir))


def report(result: dict) -> str:
  return experiment.report(result)



