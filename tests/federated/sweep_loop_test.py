"""Resume equals an uninterrupted run (sweeps: sweep_test.py)."""

import chex
import jax
import pytest

from jaxlab.federated import loop
import fed_helpers as helpers


@pytest.mark.parametrize("engine", ["vmap", "stepped"])
def test_resume_equals_uninterrupted(tmp_path, engine):
  eng = helpers.make("scaffold", epochs=1)
  key = jax.random.key(5)
  full_cfg = loop.LoopConfig(rounds=4, per_round=2, checkpoint_every=2, engine=engine)
  full, hist_full = loop.train(eng, key, full_cfg, out_dir=tmp_path / "a")
  part_cfg = loop.LoopConfig(rounds=2, per_round=2, checkpoint_every=2, engine=engine)
  loop.train(eng, key, part_cfg, out_dir=tmp_path / "b")
  eng2 = helpers.make("scaffold", epochs=1)    # a fresh process would rebuild everything
  resumed, hist = loop.train(eng2, key, full_cfg, out_dir=tmp_path / "b")
  chex.assert_trees_all_equal(full, resumed)
  assert [h["loss"] for h in hist] == [h["loss"] for h in hist_full]
  rows = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
  assert len(rows) == 4
