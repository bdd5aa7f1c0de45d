"""A vmapped sweep equals separate runs; resume equals an uninterrupted run."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.federated import loop, sweep
import fed_helpers as helpers


def test_sweep_equals_separate_runs():
  eng = helpers.make("fedprox", epochs=1)
  hp = sweep.grid(learning_rate=[0.02, 0.1], mu=[0.0, 1.0])       # R = 4
  seeds = jnp.array([0, 1, 0, 1])
  keys = jax.vmap(jax.random.key)(seeds)
  sims = sweep.init(eng, keys, hp)
  rkeys = jax.vmap(jax.random.key)(seeds + 10)
  ids_list = [np.array([0, 2]), np.array([3, 1])]
  for ids in ids_list:
    sims, _ = sweep.run_round(eng, sims, ids, rkeys)
  for r in range(4):
    sim = eng.init(jax.random.key(int(seeds[r])), {k: v[r] for k, v in hp.items()})
    for ids in ids_list:
      sim, _ = eng.run_round(sim, ids, jax.random.key(int(seeds[r]) + 10))
    chex.assert_trees_all_close(jax.tree.map(lambda t: t[r], sims), sim, rtol=1e-5, atol=1e-6)
  p = [jax.tree.leaves(jax.tree.map(lambda t: t[r], sims.server.params))[0] for r in range(4)]
  assert not np.allclose(p[0], p[2])   # different lrs really differ


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
