"""Shared pools: one-shot map over all clients, compaction, draws in batches, per run."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab import federated as fl
from jaxlab.federated import plugins
from jaxlab.federated import pool as pool_lib
import fed_helpers as helpers

SIZES = (3, 7, 12, 20, 5)
ROWS = 3


def _toy_pool(value=None):
  """Client k gives k % 3 rows [k, j, v] (v = the run's "v" hparam, or 1)."""
  def fmap(server, data, meta, key):
    v = server.hparams["v"] if value is None else jnp.float32(value)
    rows = jnp.stack([jnp.full(ROWS, meta.id, jnp.float32), jnp.arange(ROWS, dtype=jnp.float32),
                      jnp.full(ROWS, v)], 1)
    return {"r": rows}, meta.id % 3
  return pool_lib.Pool(ROWS, fmap)


def _plugin(model):
  base = plugins.supervised(model)
  def loss(params, ms, ext, batch, key):
    value, (ms, ext, m) = base.loss(params, ms, ext, batch, key)
    return value, (ms, ext, {**m, "pool_v": batch["pool"]["r"][:, 2].mean(),
                            "pool_k": batch["pool"]["r"][:, 0].max()})
  return base._replace(loss=loss, hparams={"v": 1.0})


def _engine():
  x, y, parts = helpers.tiny_data(SIZES)
  model = helpers.model()
  alg = fl.algorithms.fedavg(model, fl.client_sgd(0.05), num_clients=len(SIZES),
                             plugin=_plugin(model))
  cfg = fl.EngineConfig(batch_size=4)
  sampler = pool_lib.with_pool(fl.schedule.epoch_wrap(4, 1), pool_batch=6)
  return fl.Engine(alg, cfg, fl.make_fed_data(x, y, parts), sampler=sampler), x, y, parts


def test_pool_compacts_every_clients_rows_in_order():
  eng, *_ = _engine()
  sim = eng.init(jax.random.key(0))
  out = pool_lib.build(_toy_pool(1.0), sim.server, eng.data, jax.random.key(1), chunk=2)
  want = [[k, j, 1.0] for k in range(len(SIZES)) for j in range(k % 3)]   # hand loop
  assert int(out["pool_n"]) == len(want)
  rows = np.asarray(out["pool"]["r"])
  assert rows.shape == (len(SIZES) * ROWS, 3)
  np.testing.assert_array_equal(rows[: len(want)], want)
  np.testing.assert_array_equal(rows[len(want):], 0)


def test_batches_draw_only_valid_pool_rows():
  eng, *_ = _engine()
  sim = eng.init(jax.random.key(0), {"v": 7.0})
  eng = eng.add_pool(_toy_pool(), sim, jax.random.key(1))
  sim, m = eng.run_round(sim, np.array([0, 2, 4]), jax.random.key(2))
  np.testing.assert_allclose(float(m["pool_v"]), 7.0, rtol=1e-6)   # never a padding row
  assert 1.0 <= float(m["pool_k"]) <= 4.0                          # clients 1, 2, 4 gave rows


def test_pool_per_run_in_a_sweep():
  eng, x, y, parts = _engine()
  sw = fl.sweep.Sweep(eng.alg, eng.config, x, y, parts, num_runs=2, sampler=eng.sampler)
  keys = jnp.stack([jax.random.key(0), jax.random.key(1)])
  sims = sw.init(keys, {"v": [3.0, 5.0]})
  sw = sw.add_pool(_toy_pool(), sims, keys)
  assert sw.data.extra["pool"]["r"].shape == (2, len(SIZES) * ROWS, 3)
  sims, m = sw.run_round(sims, np.array([0, 2, 4]), keys)
  np.testing.assert_allclose(np.asarray(m["pool_v"]), [3.0, 5.0], rtol=1e-6)
