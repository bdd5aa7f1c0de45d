"""Smoke runs of the FedFed experiments; CIFAR-10 refuses clearly without data; resume."""

import dataclasses
import importlib
import json

import numpy as np
import pytest

import experiments
from jaxlab.core.errors import AssetMissingError


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fedfed-fmnist-quick", "fedfed-fmnist", "fedfed-mnist",
                                  "fedfed-cifar10"])
def test_smoke(name, tmp_path):
  mod = importlib.import_module(experiments.EXPERIMENTS[name])
  assert mod.DESCRIPTION and mod.CLAIM
  cfg = mod.get_config(smoke=True)
  result = mod.run(cfg, tmp_path)
  json.dumps(result)
  for res in result["settings"].values():
    for base in cfg.bases:
      for arm in ("base", "fedfed"):
        assert 0.0 < res[base][arm]["final_mean"] <= 1.0
    d = res["diagnostics"]
    assert 0.0 <= d["recon_mse"] < 1.0 and 0.0 <= d["ncm_acc_x_s"] <= 1.0
    if name != "fedfed-cifar10":   # its smoke data is random; the others are real images
      # something learned: a broken update (e.g. XLA:CPU at -O0 miscompiling the conv
      # gradients) leaves every arm at 0.10, the constant predictor's accuracy
      best = max(res[base][arm]["final_mean"] for base in cfg.bases for arm in ("base", "fedfed"))
      assert best > 0.11, best
  assert list(tmp_path.glob("acc_*.png")) and (tmp_path / "metrics.jsonl").exists()
  if cfg.sigmas:
    assert list(tmp_path.glob("acc_vs_sigma_*.png"))
    assert len(result["settings"]["0.1/4/2"]["accuracy_vs_sigma"]) == 1 + len(cfg.sigmas)
  assert "FedFed" in mod.report(result)


def test_cifar10_without_data_names_the_files(monkeypatch):
  from jaxlab.methods.fedfed import data
  with pytest.raises(AssetMissingError, match="CIFAR-10 not found.*dataset_dict.json"):
    data.load("/nonexistent/cifar10")


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path):
  from experiments.fedfed import fmnist_quick
  # the quick smoke's shapes without the sigma sweep (not compared here; 28% less time)
  cfg = dataclasses.replace(fmnist_quick.get_config(smoke=True), rounds=3, checkpoint_every=2,
                            sigmas=())
  full = fmnist_quick.run(cfg, tmp_path / "full")
  fmnist_quick.run(dataclasses.replace(cfg, rounds=2), tmp_path / "part")
  resumed = fmnist_quick.run(cfg, tmp_path / "part")   # restores phase 1 and round 2
  a = full["settings"]["0.1/4/2"]["fedavg"]
  b = resumed["settings"]["0.1/4/2"]["fedavg"]
  for arm in ("base", "fedfed"):
    np.testing.assert_allclose(b[arm]["final_mean"], a[arm]["final_mean"], rtol=1e-6)
