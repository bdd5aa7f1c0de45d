"""Smoke runs of every Twin-sight experiment (tiny data, 2 rounds) and its errors."""

import importlib
import json

import numpy as np
import pytest

import experiments
from jaxlab.core.errors import AssetMissingError, ConfigError

NAMES = sorted(n for n in experiments.EXPERIMENTS if n.startswith("twin-sight"))
# each smoke config compiles 1-2 sweep rounds (~10-20 s CPU each); the quick one is the
# default, the others are marked slow (still part of CI)
PARAMS = [pytest.param(n, marks=() if n.endswith("quick") else pytest.mark.slow) for n in NAMES]


@pytest.mark.parametrize("name", PARAMS)
def test_smoke(name, tmp_path):
  mod = importlib.import_module(experiments.EXPERIMENTS[name])
  assert mod.DESCRIPTION and mod.CLAIM
  cfg = mod.get_config(smoke=True)
  result = mod.run(cfg, tmp_path)
  json.dumps(result)
  tags = set(result["methods"])
  assert set(cfg.methods) <= tags and len(tags) == len(cfg.methods) + len(cfg.ablations)
  for r in result["methods"].values():
    assert 0.0 < r["best_mean"] <= 1.0 and np.isfinite(r["final_mean"])
  assert (tmp_path / "accuracy.png").exists() and (tmp_path / "metrics.jsonl").exists()
  assert "Twin-sight" in mod.report(result)


def test_missing_cifar_is_one_line_error_naming_the_files():
  from jaxlab.methods.twin_sight import data
  with pytest.raises(AssetMissingError, match="cifar10.*img.*label") as e:
    data.load("cifar10")
  assert "\n" not in str(e.value)


def test_bad_method_name_is_a_config_error():
  from jaxlab.methods.twin_sight.study import StudyConfig
  with pytest.raises(ConfigError, match="unknown methods"):
    StudyConfig(methods=("fedavg_lower", "fedmatch"))
