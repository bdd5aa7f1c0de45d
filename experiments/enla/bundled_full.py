"""EnPrompt vs baselines on all four protocols of the bundled toy suite, with ablations."""

import pathlib

from experiments.enla import common
from jaxlab.models import clip_standin
from jaxlab.methods.enla.config import PromptConfig

DESCRIPTION = "EnPrompt on base-to-novel, few-shot, cross-dataset and domain shift (toy suite)"
CLAIM = ("EnPrompt claims gains over CoOp-family baselines on base-to-novel, few-shot, "
         "cross-dataset transfer and domain generalisation. This run checks all four protocols "
         "on the toy suite (MNIST, Fashion-MNIST, digits, shapes/colours scenes; corrupted test "
         "sets for domain shift) with the cached quick stand-in, 3 seeds vmapped, and the A.7 "
         "ablations (plus step-0 rows, OT strength, epsilon, templates, lr) on base-to-novel "
         "for two sets. Small-model offline study.")

Config = common.Config


def get_config(smoke: bool = False) -> Config:
  if smoke:
    from experiments.enla import bundled
    return bundled.get_config(smoke=True)
  return Config(
    standin=clip_standin.QUICK,  # the cached quick stand-in (see docs/enla.md: why not FULL)
    prompt=PromptConfig(steps=80),
    b2n_datasets=("mnist", "fashion_mnist", "digits", "shapes", "colour_shapes", "size_shapes"),
    ablations=tuple(a for a in common.ABLATIONS if a != "enprompt_unrolled"),
    ablation_datasets=("fashion_mnist", "shapes"),
    few_shot_dataset="shapes", few_shot_methods=("zero_shot", "linear_probe", "coop", "enprompt"),
    cross_source="colour_shapes", cross_targets=("shapes", "colours", "size_shapes"),
    domain_source="fashion_mnist", transfer_methods=("zero_shot", "coop", "cocoop", "enprompt"),
    train_limit=3000, test_limit=500)


def run(config: Config, out_dir: pathlib.Path) -> dict:
  result = common.run_suite(config, out_dir)
  common.b2n_heatmap(result, pathlib.Path(out_dir))
  return result


report = common.report
