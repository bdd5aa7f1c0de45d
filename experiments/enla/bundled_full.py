"""EnPrompt vs baselines on all four protocols of the bundled toy suite, with ablations."""

import pathlib

from experiments.enla import common
from jaxlab.methods.enla import pretrain
from jaxlab.methods.enla.config import PromptConfig

DESCRIPTION = "EnPrompt on base-to-novel, few-shot, cross-dataset and domain shift (toy suite)"
CLAIM = ("EnPrompt claims gains over CoOp-family baselines on base-to-novel, few-shot, "
         "cross-dataset transfer and domain generalisation. This run checks all four protocols "
         "on the toy suite (MNIST, Fashion-MNIST, digits, shapes/colours scenes; corrupted test "
         "sets for domain shift) with the larger stand-in, 3 seeds vmapped, and the A.7 "
         "ablations on base-to-novel. Small-model offline study.")

Config = common.Config


def get_config(smoke: bool = False) -> Config:
  if smoke:
    from experiments.enla import bundled
    return bundled.get_config(smoke=True)
  return Config(
    standin=pretrain.FULL, prompt=PromptConfig(steps=200),
    b2n_datasets=("mnist", "fashion_mnist", "digits", "shapes", "colour_shapes", "size_shapes"),
    ablations=tuple(common.ABLATIONS),
    few_shot_dataset="fashion_mnist", cross_source="colour_shapes", domain_source="fashion_mnist")


def run(config: Config, out_dir: pathlib.Path) -> dict:
  result = common.run_suite(config, out_dir)
  common.b2n_heatmap(result, pathlib.Path(out_dir))
  return result


report = common.report
