"""The Plugin hooks, each exercised by a small toy plug-in and checked by hand."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab import federated as fl
from jaxlab.federated import plugins
from jaxlab.federated.types import Owned
import fed_helpers as helpers

SIZES = (3, 7, 12, 20)
B, E = 4, 2


def _engine(plugin, lr=0.05, chunk=None, name="fedavg", **tx):
  x, y, parts = helpers.tiny_data(SIZES)
  model = helpers.model()
  alg = fl.algorithms.ALGORITHMS[name](model, fl.client_sgd(lr, **tx), num_clients=len(SIZES),
                                       plugin=plugin(model))
  cfg = fl.EngineConfig(batch_size=B, local_epochs=E, client_chunk=chunk)
  return fl.Engine(alg, cfg, fl.make_fed_data(x, y, parts))


def _round(eng, ids, hp=None, seed=0):
  sim = eng.init(jax.random.key(seed), hp)
  return eng.run_round(sim, np.asarray(ids), jax.random.key(seed + 1))


def _scaled(model):
  """hparams hook: loss = scale · CE, with ``scale`` a swept scalar."""
  base = plugins.supervised(model)
  def loss(params, ms, ext, batch, key):
    value, aux = base.loss(params, ms, ext, batch, key)
    return ext * value, aux
  return base._replace(client_init=lambda server, row, meta, key: server.hparams["scale"],
                       loss=loss, hparams={"scale": 1.0})


def test_hparams_hook_is_swept():
  # Plain SGD: scale 2 at lr 0.05 takes the same steps as scale 1 at lr 0.1.
  eng = _engine(_scaled, lr=0.05)
  a, _ = _round(eng, [0, 2, 3], {"scale": 2.0, "learning_rate": 0.05})
  b, _ = _round(eng, [0, 2, 3], {"scale": 1.0, "learning_rate": 0.1})
  chex.assert_trees_all_close(a.server.params, b.server.params, rtol=1e-5, atol=1e-6)
  c, _ = _round(eng, [0, 2, 3], {"scale": 1.0, "learning_rate": 0.05})
  assert not np.allclose(jax.tree.leaves(a.server.params)[0], jax.tree.leaves(c.server.params)[0])
  assert float(a.server.hparams["scale"]) == 2.0


def _ema(decay):
  def make(model):
    base = plugins.supervised(model)
    def post_step(carry):
      ema = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, carry.ext["ema"], carry.params)
      return carry._replace(ext={"ema": ema, "calls": carry.ext["calls"] + 1})
    return base._replace(
      client_init=lambda server, row, meta, key: {"ema": server.params,
                                                  "calls": jnp.zeros([], jnp.int32)},
      client_final=lambda server, carry, meta: ((carry.ext, carry.params), ()),
      server_update=lambda server, ups, p, key: (ups, {}),
      post_step=post_step)
  return make


def test_post_step_hook_runs_after_each_real_optimizer_step():
  eng = _engine(_ema(0.0))
  sim, _ = _round(eng, [0, 1, 3])
  (ext, final), ids = sim.server.ext, np.array([0, 1, 3])
  steps = fl.schedule.local_steps(np.array(SIZES)[ids], B, E)
  # Ordering: with decay 0 the EMA is the params after the last step, not before it.
  chex.assert_trees_all_close(ext["ema"], final, rtol=0, atol=0)
  # Gating: one call per real step, none on the padded steps of the scan.
  order = np.argsort(eng.plan(ids)[1][0].id[:3])
  np.testing.assert_array_equal(np.asarray(ext["calls"])[:3][order], steps)
  assert eng.plan(ids)[0][0] > steps.max()       # the scan really had padded steps


def test_post_step_ema_matches_a_hand_loop():
  # decay 0.5 over the client's trajectory; trajectory from decay 0 runs step by step.
  d = 0.5
  eng = _engine(_ema(d))
  x, y, parts = helpers.tiny_data(SIZES)
  sim, _ = _round(eng, [2])
  ema_engine = jax.tree.map(lambda a: a[0], sim.server.ext[0]["ema"])
  # Hand loop: the same batches and keys through the bare client functions.
  eng0 = _engine(_ema(0.0))
  s0 = eng0.init(jax.random.key(0))
  meta = jax.tree.map(lambda a: jnp.asarray(a[0]), eng0.plan(np.array([2]))[1][0])
  ck = fl.engine.client_key(jax.random.key(1), 0, 2)
  carry = eng0.alg.client_init(s0.server, jax.tree.map(lambda t: t[2], s0.clients), meta,
                               fl.engine.rng.purpose(ck, fl.engine.rng.INIT))
  sst = eng0.sampler.prepare(eng0.data, meta, fl.engine.rng.purpose(ck, fl.engine.rng.DATA))
  skey = fl.engine.rng.purpose(ck, fl.engine.rng.STEP)
  ema = s0.server.params
  for t in range(int(meta.steps)):
    carry, _ = eng0.alg.client_step(carry, eng0.sampler.batch(eng0.data, meta, sst, t),
                                    jax.random.fold_in(skey, t))
    ema = jax.tree.map(lambda e, p: d * np.asarray(e) + (1 - d) * np.asarray(p), ema, carry.params)
  chex.assert_trees_all_close(ema_engine, ema, rtol=1e-5, atol=1e-6)


def _owned(model):
  """Owned params {"a", "b"} pulled towards a per-client target c_k = id + 1."""
  base = plugins.supervised(model)
  def loss(trained, ms, ext, batch, key):
    value, aux = base.loss(trained["model"], ms, ext, batch, key)
    pull = sum(0.5 * jnp.sum((v - ext) ** 2) for v in jax.tree.leaves(trained["owned"]))
    return value + pull, aux
  owned = Owned(init=lambda key: {"a": jnp.zeros(3), "b": jnp.full(2, 5.0)},
                tx=optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
                weight=lambda meta: {"a": meta.n.astype(jnp.float32),
                                     "b": (meta.id == 0).astype(jnp.float32)})
  return base._replace(client_init=lambda server, row, meta, key: (meta.id + 1).astype(jnp.float32),
                       loss=loss, owned=owned)


@pytest.mark.parametrize("ids", [[0, 1, 3], [1, 2]])
def test_owned_params_own_optimizer_and_subtree_weights(ids):
  eng = _engine(_owned)
  eta = 0.3
  sim, _ = _round(eng, ids, {"owned_learning_rate": eta})
  ids = np.array(ids)
  n = np.array(SIZES, np.float64)[ids]
  steps = fl.schedule.local_steps(n.astype(int), B, E)
  def local(theta0, k, s):      # s SGD steps on 0.5||theta - c||^2, c = k + 1
    return (k + 1) + (1 - eta) ** s * (theta0 - (k + 1))
  a = sum(n_k * local(0.0, k, s) for n_k, k, s in zip(n, ids, steps)) / n.sum()
  np.testing.assert_allclose(sim.server.owned["a"], np.full(3, a), rtol=1e-5)
  # "b" is weighted only by client 0: its value if sampled, else the server keeps 5.
  b = local(5.0, 0, steps[0]) if 0 in ids else 5.0
  np.testing.assert_allclose(sim.server.owned["b"], np.full(2, b), rtol=1e-5)
  # The model params train as without the owned pull (their gradient is independent).
  plain = _engine(lambda m: plugins.supervised(m))
  ref, _ = _round(plain, ids)
  chex.assert_trees_all_close(sim.server.params, ref.server.params, rtol=1e-5, atol=1e-6)


def _work(model):
  """Per-client steps and weights not from n: client 1 is 'unlabeled' (weight 0)."""
  base = _ema(0.0)(model)
  def work(n, extra, batch_size, epochs):
    return np.array([1, 2, 3, 1]), np.array([1.0, 0.0, 2.0, 1.0])
  return base._replace(work=work)


def test_work_hook_sets_steps_and_weights():
  eng = _engine(_work)
  sim, m = _round(eng, [0, 1, 3])
  assert int(m["real_steps"]) == 1 + 2 + 1
  meta = eng.plan(np.array([0, 1, 3]))[1][0]
  np.testing.assert_array_equal(meta.weight[:3], [1.0, 0.0, 1.0])
  # A client of weight 0 does not move the model: the same as leaving it out.
  without, _ = _round(eng, [0, 3])
  chex.assert_trees_all_close(sim.server.params, without.server.params, rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(np.asarray(sim.server.ext[0]["calls"])[:3][np.argsort(meta.id[:3])],
                                [1, 2, 1])


def _streamed(model):
  """Uploads n_k; reduce/finish stream sum_k p_k n_k (never stacked)."""
  base = plugins.supervised(model)
  return base._replace(
    server_init=lambda key, data: jnp.zeros([]),
    client_final=lambda server, carry, meta: (meta.n.astype(jnp.float32), ()),
    reduce=lambda server, ups, p, tot: jnp.dot(p, ups),
    finish=lambda server, sums, tot: sums,
    server_update=lambda server, agg, p, key: (agg, {"p_shape": jnp.float32(p.shape[0])}))


@pytest.mark.parametrize("chunk", [None, 2])
def test_streamed_plugin_upload(chunk):
  eng = _engine(_streamed, chunk=chunk)
  ids = [0, 1, 2, 3]
  sim, m = _round(eng, ids)
  n = np.array(SIZES, np.float64)
  np.testing.assert_allclose(float(sim.server.ext), (n * n).sum() / n.sum(), rtol=1e-6)


def test_eval_hook_for_a_sub_model():
  eng = _engine(_owned)
  sim = eng.init(jax.random.key(0))
  x, y, _ = helpers.tiny_data(SIZES)
  xt, yt, mt = fl.eval.pad_eval(x, y, 8)
  model = helpers.model()
  # A sub-model: the model with its logits shifted by the owned "a" (3 classes).
  logits = lambda server, xb: model.apply(server.params, server.model_state, xb, False)[0] \
    + 100.0 * jnp.eye(3)[2] * (server.owned["a"].sum() + 1.0)
  res = fl.eval.make_evaluate_server(logits, 8)(sim.server, xt, yt, mt)
  np.testing.assert_allclose(float(res["accuracy"]), np.mean(y == 2), rtol=1e-6)


def test_docs_example_plugin_runs():
  # The ~30-line example of docs/federated.md "Plug-ins", copied verbatim.
  def ema_plugin(model, decay=0.99):
    base = fl.plugins.supervised(model)
    def server_init(key, data):
      return {"ema": model.init(key)[0]}
    def client_init(server, row, meta, key):
      return {"ema": server.params, "decay": server.hparams["ema_decay"]}
    def post_step(carry):
      e = carry.ext
      ema = jax.tree.map(lambda a, p: e["decay"] * a + (1 - e["decay"]) * p,
                         e["ema"], carry.params)
      return carry._replace(ext={**e, "ema": ema})
    def client_final(server, carry, meta):
      return carry.ext["ema"], ()
    def reduce(server, ups, p, tot):
      return jax.tree.map(lambda u: jnp.tensordot(p, u, axes=1), ups)
    def server_update(server, ema, p, key):
      return {"ema": ema}, {}
    return base._replace(server_init=server_init, client_init=client_init,
                         client_final=client_final, server_update=server_update,
                         post_step=post_step, reduce=reduce,
                         finish=lambda server, sums, tot: sums,
                         hparams={"ema_decay": decay},
                         eval_logits=lambda server, x: model.apply(
                           server.ext["ema"], server.model_state, x, False)[0])

  plugin = ema_plugin(helpers.model())
  eng = _engine(lambda model: plugin, name="fedprox")
  sim, _ = _round(eng, [0, 1, 3], {"ema_decay": 0.0, "mu": 0.1})
  # decay 0: the averaged EMA is the averaged local model == the new global params.
  chex.assert_trees_all_close(sim.server.ext["ema"], sim.server.params, rtol=1e-5, atol=1e-6)
  x, y, _ = helpers.tiny_data(SIZES)
  ev = fl.eval.make_evaluate_server(plugin.eval_logits, 8)
  ref = fl.eval.make_evaluate(helpers.model(), 8)
  xt, yt, mt = fl.eval.pad_eval(x, y, 8)
  got, want = ev(sim.server, xt, yt, mt), ref(sim.server.params, sim.server.model_state, xt, yt, mt)
  np.testing.assert_allclose(float(got["accuracy"]), float(want["accuracy"]), rtol=1e-6)
