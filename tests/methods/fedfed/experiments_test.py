"""Smoke runs of the FedFed experiments; CIFAR-10 refuses clearly without data; resume."""

import dataclasses
import importlib
import json

import numpy as np
import pytest

import experiments
from jaxlab.core.errors import AssetMissingError


@pytest.fixture(scope="module")
def quick_smoke(tmp_path_factory):
  """The quick smoke, run once: its own smoke test and the resume test's uninterrupted run."""
  from experiments.fedfed import fmnist_quick
  cfg = fmnist_quick.get_config(smoke=True)
  out = tmp_path_factory.mktemp("quick")
  return cfg, fmnist_quick.run(cfg, out), out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fedfed-fmnist-quick", "fedfed-fmnist", "fedfed-mnist",
                                  "fedfed-cifar10"])
def test_smoke(name, tmp_path, request):
  mod = importlib.import_module(experiments.EXPERIMENTS[name])
  assert mod.DESCRIPTION and mod.CLAIM
  if name == "fedfed-fmnist-quick":
    cfg, result, tmp_path = request.getfixturevalue("quick_smoke")
  else:
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
def test_resume_equals_uninterrupted(quick_smoke, tmp_path, monkeypatch):
  from experiments.fedfed import fmnist_quick
  from jaxlab.methods.fedfed import study
  # the uninterrupted run is the quick smoke's (2 rounds, a checkpoint every round, the sigma
  # sweep): one run of the phase-1 and phase-2 programs less than a separate reference
  cfg, full, _ = quick_smoke
  assert cfg.rounds == 2 and cfg.checkpoint_every == 1 and cfg.sigmas
  fmnist_quick.run(dataclasses.replace(cfg, rounds=1), tmp_path)
  # the resumed run restores phase 1 and round 1: no phase-1 training, one round per run
  # (a run that silently started over would give the same numbers, so this is checked)
  totals = []

  def no_phase1(*a, **kw):
    raise AssertionError("phase 1 trained again on resume")

  def spy(it, *a, total=None, **kw):
    totals.append(total)
    return it

  monkeypatch.setattr(study.phases, "run", no_phase1)
  monkeypatch.setattr(study, "progress", spy)
  resumed = fmnist_quick.run(cfg, tmp_path)
  assert set(totals) == {1}, totals
  a = full["settings"]["0.1/4/2"]
  b = resumed["settings"]["0.1/4/2"]
  for arm in ("base", "fedfed"):
    np.testing.assert_allclose(b["fedavg"][arm]["final_mean"], a["fedavg"][arm]["final_mean"],
                               rtol=1e-6)
  assert b["accuracy_vs_sigma"].keys() == a["accuracy_vs_sigma"].keys()
  np.testing.assert_allclose(list(b["accuracy_vs_sigma"].values()),
                             list(a["accuracy_vs_sigma"].values()), rtol=1e-6)
