"""Smoke runs of the federated experiments: they finish and their numbers are finite."""

import importlib
import math

import pytest

pytest.importorskip("datasets")


@pytest.mark.parametrize("name", ["baselines_mnist_quick", "baselines_mnist", "baselines_fmnist"])
def test_experiment_smoke(name, tmp_path):
  mod = importlib.import_module(f"experiments.federated.{name}")
  try:
    from jaxlab.data import load
    load("fashion_mnist" if "fmnist" in name else "mnist")
  except Exception as e:  # noqa: BLE001 - asset not installed
    pytest.skip(f"dataset asset missing: {e}")
  cfg = mod.get_config(smoke=True)
  result = mod.run(cfg, tmp_path)
  assert result["runs"]
  for r in result["runs"].values():
    assert math.isfinite(r["final_accuracy"]) and 0.0 <= r["final_accuracy"] <= 1.0
  assert (tmp_path / "metrics.jsonl").exists()
  assert list(tmp_path.glob("accuracy_a*.png")) and list(tmp_path.glob("partition_a*.png"))
  assert "| run |" in mod.report(result)
  again = mod.run(cfg, tmp_path)          # resumes from the finished checkpoints
  assert again["runs"].keys() == result["runs"].keys()
  for k in result["runs"]:
    assert again["runs"][k]["final_accuracy"] == result["runs"][k]["final_accuracy"]


def test_a_diverging_method_is_recorded_and_the_study_goes_on(tmp_path):
  import dataclasses
  mod = importlib.import_module("experiments.federated.baselines_mnist")
  base = mod.get_config(smoke=True)
  fine = mod.run(dataclasses.replace(base, algorithms=("fedavg",), rounds=3), tmp_path)
  cfg = dataclasses.replace(base, algorithms=("fedavg", "fedprox"), learning_rate=1e9,
                            rounds=3)
  result = mod.run(cfg, tmp_path / "lr1e9")
  assert set(result["runs"]) == {"fedavg_a0.5", "fedprox_a0.5"}
  for r in result["runs"].values():
    assert "nan" in r["diverged"] or "inf" in r["diverged"]
    assert math.isnan(r["final_accuracy"])
  assert "diverged" in mod.report(result)
  assert math.isfinite(fine["runs"]["fedavg_a0.5"]["final_accuracy"])
  # A diverged run next to a finished one: shorter curve, the plot still gets drawn.
  curves = {"fedavg_a0.5": [(1, 0.5), (2, 0.6), (3, 0.7)], "scaffold_a0.5": [(1, 0.4)]}
  common = importlib.import_module("experiments.federated.common")
  common._plots(cfg, tmp_path, curves, {})
  assert (tmp_path / "accuracy_a0.5.png").stat().st_size > 0
