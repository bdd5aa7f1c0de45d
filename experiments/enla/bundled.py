"""EnPrompt vs baselines, base-to-novel on the bundled toy suite (quick)."""

import dataclasses
import pathlib

from experiments.enla import common
from jaxlab.models import clip_standin
from jaxlab.methods.enla.config import PromptConfig
from jaxlab.methods.enla.ot import OTConfig

DESCRIPTION = "EnPrompt (reconstructed) vs zero-shot/linear probe/CoOp/CoCoOp/PLOT, base-to-novel"
CLAIM = ("EnPrompt claims the best base-to-novel harmonic mean among CoOp-family prompt learners "
         "(frozen text + external layer keeps novel-class accuracy while deep visual prompts "
         "and OT fit the base classes). This quick run checks the ranking on two toy sets "
         "(Fashion-MNIST, shapes scenes) with a small offline CLIP stand-in, 16 shots, "
         "3 seeds vmapped, each method at its anchor lr, one shared template, plus step-0 rows "
         "(EnPrompt and CoOp start exactly at zero-shot), w/o OT and the mandatory uniform-plan "
         "ablation. Small-model offline study.")

Config = common.Config


def get_config(smoke: bool = False) -> Config:
  if smoke:
    return Config(
      standin=dataclasses.replace(clip_standin.QUICK, width=32, layers=1, heads=2, patch=16,
                                  text_width=32, text_layers=1, projection=16, steps=3,
                                  batch=16, per_dataset=64, datasets=("digits", "shapes")),
      prompt=PromptConfig(steps=2, batch=8, ot=OTConfig(iterations=5)), seeds=2, shots=2,
      b2n_datasets=("digits",), ablations=("enprompt_step0", "coop_step0"),
      train_limit=200, test_limit=40)
  return Config(prompt=PromptConfig(steps=80),
                ablations=("coop_step0", "enprompt_step0", "enprompt_no_ot",
                           "enprompt_uniform_plan"),
                b2n_datasets=("fashion_mnist", "shapes"), train_limit=3000, test_limit=500)


def run(config: Config, out_dir: pathlib.Path) -> dict:
  result = common.run_suite(config, out_dir)
  common.b2n_heatmap(result, pathlib.Path(out_dir))
  return result


report = common.report
