"""Smoke tests of dqs-4photon and dqs-8photon, and data-generation resume."""

import math

import numpy as np
import pytest

from jaxlab.methods.dqs import config as C
from jaxlab.methods.dqs import dataset


def _finite(result):
  for k, v in result.items():
    vals = v if isinstance(v, list) else [v]
    for x in vals:
      if isinstance(x, float) and k.split("/")[-1] not in ("r2", "spearman"):
        assert math.isfinite(x), k


@pytest.mark.parametrize("name", ["photon4", "photon8"])
def test_smoke(name, tmp_path):
  import importlib

  mod = importlib.import_module(f"experiments.dqs.{name}")
  result = mod.run(mod.get_config(smoke=True), tmp_path)
  _finite(result)
  assert "gnn/test/all/mse" in result and "search/random/frac_at_hl" in result
  # the compute-matched baseline starts from the training data's exact labels
  assert result["search/matched/n_simulated"] == (
    result["data/n_setups"] + result["search/matched/n_extra"])
  assert result["search/matched/n_extra"] >= 1
  for k in ("mse_over_hl", "mse_over_hl_total", "mse_over_crb"):
    assert any(key.endswith(k) for key in result), k
  assert (tmp_path / "estimator_mse.png").exists()
  assert isinstance(mod.report(result), str)


def test_generation_resumes_identically(tmp_path):
  cfg = C.SimConfig(n_photons=4)
  full = dataset.generate(tmp_path / "a", cfg, 60, chunk_size=20, seed=3)
  dataset.generate(tmp_path / "b", cfg, 20, chunk_size=20, seed=3)  # "interrupted"
  resumed = dataset.generate(tmp_path / "b", cfg, 60, chunk_size=20, seed=3)
  for k in full:
    np.testing.assert_array_equal(full[k], resumed[k])
  with pytest.raises(Exception, match="dataset made with"):
    dataset.generate(tmp_path / "b", cfg, 60, chunk_size=30, seed=3)
  stats = dataset.statistics(full, 4)
  assert 0 <= stats["p_failed"] <= 1 and stats["max_qfi_Z"] <= 16 + 1e-4
