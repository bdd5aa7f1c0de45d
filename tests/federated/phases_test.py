"""A pre-phase with its own plug-in, rounds, S and E, handed off to the main phase."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab import federated as fl
from jaxlab.federated import phases, plugins
from jaxlab.federated.types import Owned, Phase
import fed_helpers as helpers

SIZES = (3, 7, 12, 20, 5)
B = 4


def _phase_plugin(model):
  """Owned z pulled to c_k = id + 1 by SGD (the model trains as usual)."""
  base = plugins.supervised(model)
  def loss(trained, ms, ext, batch, key):
    value, aux = base.loss(trained["model"], ms, ext, batch, key)
    return value + 0.5 * jnp.sum((trained["owned"]["z"] - ext) ** 2), aux
  return base._replace(
    client_init=lambda server, row, meta, key: (meta.id + 1).astype(jnp.float32), loss=loss,
    owned=Owned(init=lambda key: {"z": jnp.zeros(2)},
                tx=optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)))


def test_phase_then_main_in_a_sweep():
  x, y, parts = helpers.tiny_data(SIZES)
  model = helpers.model()
  phase = Phase("distill", _phase_plugin(model), rounds=2, per_round=2, local_epochs=3,
                handoff=lambda ps, ms: ms._replace(ext={"z": ps.owned["z"]}))
  main_plugin = plugins.supervised(model)._replace(
    server_init=lambda key, data: {"z": jnp.zeros(2)}, phases=(phase,))

  def make_runner(plugin, epochs):
    alg = fl.algorithms.fedavg(model, fl.client_sgd(0.05), num_clients=len(SIZES), plugin=plugin)
    return fl.sweep.Sweep(alg, fl.EngineConfig(batch_size=B, local_epochs=epochs), x, y, parts,
                          num_runs=2)

  keys = jnp.stack([jax.random.key(0), jax.random.key(1)])
  etas = [0.1, 0.3]
  [(runner, psim, hist)] = phases.run(main_plugin.phases, make_runner, keys,
                                      {"owned_learning_rate": etas})
  assert len(hist) == 2 and hist[0]["phase"] == "distill"
  # Closed form per run: local SGD on 0.5||z - c_k||^2 for E·ceil(n_k/B) steps, n_k-weighted.
  n = np.array(SIZES, np.float64)
  for r, eta in enumerate(etas):
    z = 0.0
    for rnd in range(2):
      ids = fl.sample_clients(rnd, len(SIZES), 2)
      s = fl.schedule.local_steps(n[ids].astype(int), B, 3)
      z = sum(n[k] * ((k + 1) + (1 - eta) ** sk * (z - (k + 1))) for k, sk in zip(ids, s)) / n[ids].sum()
    np.testing.assert_allclose(psim.server.owned["z"][r], np.full(2, z), rtol=1e-5)
  main = make_runner(main_plugin, 1)
  msim = phases.handoff(phase, psim, main.init(keys))
  np.testing.assert_allclose(msim.server.ext["z"], psim.server.owned["z"])
  msim, _ = main.run_round(msim, np.array([0, 1]), keys)        # the main phase runs on
  np.testing.assert_allclose(msim.server.ext["z"], psim.server.owned["z"])


class _Interrupt(Exception):
  pass


class _Stopping:
  """A runner that raises after ``budget`` rounds (a killed process)."""

  def __init__(self, runner, budget):
    self.runner, self.budget, self.num_clients = runner, budget, runner.num_clients

  def init(self, *a):
    return self.runner.init(*a)

  def run_round(self, *a):
    if self.budget[0] == 0:
      raise _Interrupt()
    self.budget[0] -= 1
    return self.runner.run_round(*a)


def test_phases_resume_equals_uninterrupted(tmp_path):
  x, y, parts = helpers.tiny_data(SIZES)
  model = helpers.model()
  two = (Phase("a", _phase_plugin(model), rounds=3, per_round=2, local_epochs=2),
         Phase("b", _phase_plugin(model), rounds=3, per_round=3, local_epochs=1))

  def make_runner(plugin, epochs):
    alg = fl.algorithms.fedavg(model, fl.client_sgd(0.05), num_clients=len(SIZES), plugin=plugin)
    return fl.Engine(alg, fl.EngineConfig(batch_size=B, local_epochs=epochs, min_bucket=16),
                     fl.make_fed_data(x, y, parts))

  key = jax.random.key(4)
  full = phases.run(two, make_runner, key)
  for budget, every in ((4, 1), (1, 0), (5, 2)):     # killed in phase b / in a / in b
    out = tmp_path / f"run{budget}"
    left = [budget]
    try:
      phases.run(two, lambda p, e: _Stopping(make_runner(p, e), left), key, out_dir=out,
                 checkpoint_every=every)
    except _Interrupt:
      pass
    resumed = phases.run(two, make_runner, key, out_dir=out, checkpoint_every=every)
    for (_, s_full, h_full), (_, s_res, h_res) in zip(full, resumed):
      chex.assert_trees_all_equal(jax.device_get(s_full), jax.device_get(s_res))
      assert [h["round"] for h in h_res] == [1, 2, 3]
      for a, b in zip(h_full, h_res):
        assert a.keys() == b.keys()
        for k in a:
          np.testing.assert_array_equal(a[k], b[k])
