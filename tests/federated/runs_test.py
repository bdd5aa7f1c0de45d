"""fl.runs: R runs on the stepped / sequential engine equal the vmapped Sweep's runs."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab import federated as fl
from jaxlab.core.errors import ConfigError
from jaxlab.federated import pool as pool_lib
from jaxlab.federated import runs
from jaxlab.models import CNN
import fed_helpers as helpers

SIZES = (3, 7, 12, 20, 5, 9)
ROUNDS = ([0, 2, 5], [3, 1, 4], [5, 0, 1])     # partial participation: 3 of 6
SEEDS = (3, 7)                                  # one init/training key per run


def _parts(seed):
  """Run 0: the helpers' partition; run 1: another partition of the same samples (other
  client sizes, so a swapped partition changes step counts, weights and batches)."""
  _, _, parts = helpers.tiny_data(SIZES, seed=0)
  if seed == 0:
    return parts
  flat = np.random.RandomState(seed).permutation(np.concatenate(parts))
  return np.split(flat, np.cumsum([4, 15, 2, 11, 8])).copy()


def _setup():
  x, y, _ = helpers.tiny_data(SIZES)
  model = fl.Model.from_linen(CNN(num_classes=3, channels=(2, 4), hidden=8),
                              jnp.zeros((2, 4, 4, 1)))
  alg = fl.algorithms.fedavg(model, fl.client_sgd(0.05, momentum=0.5), num_clients=len(SIZES),
                             persist_opt_state=True)
  cfg = fl.EngineConfig(batch_size=4, local_epochs=2, min_bucket=16, steps_per_call=2)
  keys = jnp.stack([jax.random.key(s) for s in SEEDS])
  hp = {"learning_rate": jnp.asarray([0.05, 0.1])}   # per-run hparams must map too
  return alg, cfg, x, y, [_parts(0), _parts(1)], keys, hp


def _train(runner, keys, hp):
  sims = runner.init(keys, hp)
  tkeys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, 1)
  losses = []
  for ids in ROUNDS:
    sims, m = runner.run_round(sims, np.array(ids), tkeys)
    losses.append(np.asarray(m["loss"]))
  return sims, np.stack(losses)


@pytest.fixture(scope="module")
def vmapped():
  """The vmapped Sweep's states and losses (the reference, computed once)."""
  alg, cfg, x, y, parts, keys, hp = _setup()
  return _train(fl.Sweep(alg, cfg, x, y, parts), keys, hp)


@pytest.mark.parametrize("engine,lanes", [("stepped", 1), ("stepped", 2), ("sequential", 1)])
def test_runs_equal_vmapped_sweep(vmapped, engine, lanes):
  """2 runs x 3 rounds of a tiny CNN FedAvg with per-client momentum kept across rounds:
  each run has its own partition, key and learning rate, so any wrong run -> partition,
  key or hparam mapping changes the numbers (the runs differ from each other by far more
  than the tolerance, checked below)."""
  alg, cfg, x, y, parts, keys, hp = _setup()
  want, want_loss = vmapped
  mesh = fl.clients_mesh(lanes) if lanes > 1 else None
  got, got_loss = _train(runs.make(alg, cfg, x, y, parts, engine=engine, mesh=mesh,
                                   client_table="replicated" if mesh else None), keys, hp)
  chex.assert_trees_all_close(got.server, want.server, rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(got.clients, want.clients, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got_loss, want_loss, rtol=1e-5)
  # The two runs are far apart, so a swap of anything per-run could not pass the above.
  w = jax.tree.leaves(want.server.params)
  assert max(float(jnp.abs(a[0] - a[1]).max()) for a in w) > 1e-2
  assert np.abs(want_loss[:, 0] - want_loss[:, 1]).max() > 1e-3


def _key_pool(rows=3):
  """Client k gives ``n_k % 3`` rows [k, n_k, u(key), v]: the run's partition, pool key and
  hparam all show up in the rows."""
  def fmap(server, data, meta, key):
    u = jax.random.uniform(key, (rows,))
    r = jnp.stack([jnp.full(rows, meta.id, jnp.float32), jnp.full(rows, meta.n, jnp.float32),
                   u, jnp.full(rows, server.hparams["learning_rate"])], 1)
    return {"r": r}, meta.n % 3
  return pool_lib.Pool(rows, fmap)


@pytest.mark.parametrize("engine", ["stepped", "sequential"])
def test_add_pool_per_run_equals_sweep(engine):
  alg, cfg, x, y, parts, keys, hp = _setup()
  sweep = fl.Sweep(alg, cfg, x, y, parts)
  runner = runs.Runs(alg, cfg, x, y, parts, engine=engine)
  pkeys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, 99)
  want = sweep.add_pool(_key_pool(), sweep.init(keys, hp), pkeys).data.extra
  got = runner.add_pool(_key_pool(), runner.init(keys, hp), pkeys)
  for r, eng in enumerate(got.engines):
    np.testing.assert_array_equal(eng.data.extra["pool_n"], want["pool_n"][r])
    np.testing.assert_allclose(eng.data.extra["pool"]["r"], want["pool"]["r"][r], rtol=1e-6)
  assert int(want["pool_n"][0]) != int(want["pool_n"][1])   # the partitions differ


def test_runs_refuse_clearly():
  alg, cfg, x, y, parts, keys, hp = _setup()
  with pytest.raises(ConfigError, match="engine='pmap'"):
    runs.make(alg, cfg, x, y, parts, engine="pmap")
  with pytest.raises(ConfigError, match="reduce/finish"):
    runs.Runs(alg._replace(reduce=None), cfg, x, y, parts, engine="stepped")
  runner = runs.Runs(alg, cfg, x, y, parts, engine="sequential")
  with pytest.raises(ConfigError, match="R=2"):
    runner.init(keys[:1])
  assert isinstance(runs.make(alg, cfg, x, y, parts), fl.Sweep)


def test_by_run_equals_vmap():
  """``fl.runs.by_run`` (one jitted call a run) computes what ``jax.vmap`` does."""
  f = lambda p, x: jnp.tanh(x @ p["w"]).sum(-1) + p["b"]
  key = jax.random.key(3)
  p = {"w": jax.random.normal(key, (3, 4, 2)), "b": jnp.arange(3.0)}
  x = jax.random.normal(jax.random.fold_in(key, 1), (3, 5, 4))
  np.testing.assert_allclose(runs.by_run(f)(p, x), jax.vmap(f)(p, x), rtol=1e-6)
