"""Twin-sight ablations on Fashion-MNIST PC: NP off, instance discrimination off, XOR vs B^2."""

import pathlib

from experiments.twin_sight import common
from jaxlab.methods.twin_sight import study

DESCRIPTION = ("Twin-sight ablations, Fashion-MNIST PC: NP off (sim=0), instance "
               "discrimination off (insDis=0), the reference's XOR normaliser vs B^2; 3 seeds")
CLAIM = ("Twin-sight's gain comes from the NP constraint tying f_s to f_u. All four variants "
         "x 3 seeds run as one vmap (the switches are swept scalars).")

Config = study.StudyConfig


def get_config(smoke: bool = False) -> study.StudyConfig:
  abl = ("np_xor",) if smoke else ("np_off", "insdis_off", "np_xor")
  return common.fmnist(smoke, twin=common.PC, methods=("twin_sight",), ablations=abl)


def run(config: study.StudyConfig, out_dir: pathlib.Path) -> dict:
  return study.run(config, out_dir)


def report(result: dict) -> str:
  return study.report(result, "Twin-sight ablations, Fashion-MNIST PC (small offline reproduction)")
