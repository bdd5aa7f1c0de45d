"""Smoke runs of the FedImpro experiments, and resume == uninterrupted."""

import dataclasses
import importlib
import json

import numpy as np
import pytest

import experiments


@pytest.mark.parametrize("name", ["fedimpro-fmnist-quick", "fedimpro-fmnist", "fedimpro-mnist",
                                  "fedimpro-cifar10"])
def test_smoke(name, tmp_path):
  mod = importlib.import_module(experiments.EXPERIMENTS[name])
  assert mod.DESCRIPTION and mod.CLAIM
  result = mod.run(mod.get_config(smoke=True), tmp_path)
  json.dumps(result)
  for res in result["settings"].values():
    for method in ("fedavg", "fedimpro"):
      assert 0.0 < res[method]["best_mean"] <= 1.0
    # The per-round estimator-error probe ran on the FedImpro run.
    trace = res["estimator_error"]["fedimpro"]
    assert trace
    for e in trace.values():
      assert 0.0 <= e["est_rel_mean_err"] < 10 and 0.0 < e["est_sigma_ratio"] < 10
      assert np.isfinite(e["true_std"]) and e["true_std"] > 0
  assert list(tmp_path.glob("acc_*.png")) and (tmp_path / "metrics.jsonl").exists()
  assert "FedImpro" in mod.report(result)


def test_resume_equals_uninterrupted(tmp_path):
  from experiments.fedimpro import common, datasets, fmnist_quick
  from jaxlab.core.metrics import MetricsWriter
  cfg = dataclasses.replace(fmnist_quick.get_config(smoke=True), rounds=3, checkpoint_every=2)
  ds = datasets.load(cfg.dataset, cfg.train_size, cfg.test_size)

  def train(c, out):
    run = common.Run(c, ds, "0.1/10/5", "fedimpro", 0)
    return run.train(out, "fi", MetricsWriter(out), 0)

  full = train(cfg, tmp_path / "full")
  train(dataclasses.replace(cfg, rounds=2), tmp_path / "part")
  resumed = train(cfg, tmp_path / "part")  # restores round 2, runs round 3
  np.testing.assert_allclose(resumed, full, rtol=1e-6)
  rows = [json.loads(r) for r in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
  assert [r["round"] for r in rows] == [1, 2, 3]


def test_local_cifar_layout_loads(tmp_path):
  """A local HF CIFAR-10 copy (PIL ``img`` column, ``label``) loads as uint8 arrays."""
  datasets = pytest.importorskip("datasets")
  from experiments.fedimpro import datasets as data_lib
  rs = np.random.RandomState(0)
  feats = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(num_classes=10)})
  def split(n):
    imgs = [rs.randint(0, 256, (32, 32, 3)).astype(np.uint8) for _ in range(n)]
    return datasets.Dataset.from_dict({"img": imgs, "label": list(range(n))}, features=feats)
  dd = datasets.DatasetDict({"train": split(10), "test": split(10)})
  dd.save_to_disk(str(tmp_path / "cifar"))
  ds = data_lib.load(str(tmp_path / "cifar"))
  assert ds.x_train.shape == (10, 32, 32, 3) and ds.x_train.dtype == np.uint8
  np.testing.assert_array_equal(ds.x_train[3], np.asarray(dd["train"][3]["img"]))
  assert ds.num_classes == 10
  x = np.asarray(ds.preprocess(ds.x_train[:2]))
  assert x.shape == (2, 32, 32, 3) and abs(x.mean()) < 3


def test_variants_and_paired_ci():
  from experiments.fedimpro import common
  from jaxlab.core.errors import ConfigError
  from jaxlab.methods.fedimpro import FedImproConfig
  base = FedImproConfig(quirk_last_batch_estimator=True, fake_weight_max_epochs=30.0)
  v = common.variant_config(base, "faithful")
  assert (v.estimator, v.sigma_clip, v.server_estimate) == ("running", None, "selected_label_size")
  assert v.fake_weight_max_epochs == 30.0 and not v.quirk_last_batch_estimator
  assert common.variant_config(base, "as_coded_noclip").estimator == "as_coded"
  o = common.variant_config(base, "oracle")  # clients never move the oracle estimate
  assert (o.estimator, o.client_beta, o.sigma_clip) == ("as_coded", 1.0, None)
  assert common.variant_config(base, "oracle_clip").sigma_clip == 0.1
  with pytest.raises(ConfigError, match="variant 'kalman' is unknown"):
    common.variant_config(base, "kalman")
  # Paired differences 0.02, 0.04, 0.00: mean 0.02, sd 0.02, t(0.975, 2) = 4.3027.
  mean, half = common.paired_ci(np.array([0.82, 0.84, 0.80]), np.array([0.80, 0.80, 0.80]))
  np.testing.assert_allclose([mean, half], [0.02, 4.302653 * 0.02 / np.sqrt(3)], rtol=1e-5)
