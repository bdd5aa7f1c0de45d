"""Arithmetic heads on SmolLM2-135M-Instruct, quick version (<= 5 min on 2 CPU cores)."""

import pathlib

from experiments.arith_heads import smollm2
from jaxlab.methods.arith_heads import experiment
from jaxlab.methods.arith_heads.config import Config

DESCRIPTION = "Arithmetic heads in SmolLM2-135M, quick: patching map, knockout, pinpoint tuning"
CLAIM = smollm2.CLAIM + (" Quick version: 24 prompts, k in {4, 8} with 5 random seeds, "
                         "short zero-shot tuning runs for 4 arms.")


def get_config(smoke: bool = False) -> Config:
  if smoke:
    return smollm2.smoke_config()
  return Config(ops=("+",), templates=("equation", "statement"), draws=1, n_patch=24,
                patch_batch=None, knock_ks=(4, 8), random_seeds=3, n_knock=36, knock_chunk=6,
                transfer_sets=(("statement", "+"), ("equation", "-")), transfer_k=8, tune_k=8,
                tune_arms=("heads", "random", "full"), tune_target="chat", tune_items=400,
                test_items=80, tune_seeds=1, lr_heads=(1e-2,), lr_full=(3e-5,),
                tune_steps=24, tune_batch=4, kl_passages=8, kl_length=64,
                repatch=False, tune_ckpt_every=0)   # a 5-minute run: no 1.6 GB full-FT checkpoint


def run(config: Config, out_dir: pathlib.Path) -> dict:
  return experiment.run(config, pathlib.Path(out_dir))


def report(result: dict) -> str:
  return experiment.report(result)
