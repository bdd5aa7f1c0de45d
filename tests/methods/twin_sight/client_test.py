"""The twin client update on the engine vs an independent hand loop; settings; views."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab import federated as fl
from jaxlab.core import rng
from jaxlab.federated import schedule
from jaxlab.methods import twin_sight as ts

K, B, C, LR, MOM, WD = 3, 4, 3, 0.05, 0.9, 1e-3


@pytest.fixture(scope="module")
def setup():
  rs = np.random.RandomState(0)
  x = rs.randint(0, 255, (40, 8, 8, 1)).astype(np.uint8)
  y = rs.randint(0, C, 40).astype(np.int32)
  parts = [np.arange(0, 11), np.arange(11, 14), np.arange(14, 40)]   # n = 11, 3 (< B), 26
  lab = np.array([1, 0, 0], np.float32)                              # client 0 labeled
  data = fl.make_fed_data(x, y, parts, extra=ts.pc_extra(lab)(parts))
  twin = ts.make_twin(ts.BackboneConfig(channels=(3,), kernel=3, feat_dim=5), C,
                      jnp.zeros((B, 8, 8, 1)), proj_hidden=6, proj_dim=4)
  built = ts.make("twin_sight", twin, ts.TwinSightConfig(), ts.AugConfig(crop_pad=1), num_clients=K,
                  num_classes=C, client_tx=fl.client_sgd(LR, MOM, WD), batch_size=B)
  return data, twin, built


def _hand_client(built, server, meta, data, key, steps, grad_fn):
  """PyTorch-style SGD by hand (decay, then momentum) on both models of one client."""
  plugin, sampler = built.plugin, schedule.epoch_wrap(B, 1)
  row = jax.tree.map(lambda a: a[0], fl.init_sim(built.algorithm, 1, key, None, data).clients)
  ext = plugin.client_init(server, row["ext"], meta, rng.purpose(key, rng.INIT))
  params = {"model": server.params, "owned": server.owned}
  buf = jax.tree.map(jnp.zeros_like, params)
  order = sampler.prepare(data, meta, rng.purpose(key, rng.DATA))
  skey = rng.purpose(key, rng.STEP)
  for t in range(steps):
    batch = sampler.batch(data, meta, order, t)
    g = grad_fn(params, ext, batch, jax.random.fold_in(skey, t))
    g = jax.tree.map(lambda gi, p: gi + WD * p, g, params)
    buf = jax.tree.map(lambda b, gi: MOM * b + gi, buf, g) if t else g
    params = jax.tree.map(lambda p, b: p - LR * b, params, buf)
  return params


def test_vmapped_twin_clients_equal_hand_loops_labeled_and_unlabeled(setup):
  data, twin, built = setup
  alg = built.algorithm
  sim = fl.init_sim(alg, K, jax.random.key(0), None, data)
  steps = schedule.local_steps(np.asarray(data.n), B, 1)               # [3, 1, 7]
  metas = fl.ClientMeta(jnp.arange(K), data.n, jnp.asarray(steps), data.n.astype(jnp.float32))
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(5), i))(jnp.arange(K))
  cu = fl.client_update(alg, schedule.epoch_wrap(B, 1), 8)
  rows = fl.engine.gather(sim.clients, metas.id)
  ups, new_rows, _ = jax.jit(jax.vmap(cu, in_axes=(None, 0, 0, None, 0)))(
    sim.server, rows, metas, data, keys)
  grad_fn = jax.jit(jax.grad(lambda p, ext, batch, key: built.plugin.loss(
    p, sim.server.model_state, ext, batch, key)[0]))
  for k in range(K):
    meta_k = jax.tree.map(lambda a: a[k], metas)
    ref = _hand_client(built, sim.server, meta_k, data, keys[k], int(steps[k]), grad_fn)
    local_s = jax.tree.map(lambda g, d: g - d[k], sim.server.params, ups["delta"])
    local_u = jax.tree.map(lambda a: a[k], ups["owned"]["params"])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6),
                 local_s, ref["model"])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6),
                 local_u, ref["owned"])
  # f_u's momentum is kept in the persistent row (sampled clients only)
  mom = jax.tree.leaves(new_rows["owned_opt"])
  assert any(float(jnp.abs(m).sum()) > 0 for m in mom)


def test_unlabeled_client_fs_learns_only_through_np(setup):
  """sim = 0 and no decay/momentum: an unlabeled client's f_s does not move; a
  labeled client's does."""
  data, twin, _ = setup
  built = ts.make("twin_sight", twin, ts.TwinSightConfig(sim=0.0), ts.AugConfig(crop_pad=1),
                  num_clients=K, num_classes=C, client_tx=fl.client_sgd(LR), batch_size=B)
  eng = fl.Engine(built.algorithm, fl.EngineConfig(batch_size=B), data)
  sim0 = eng.init(jax.random.key(0))
  before = jax.tree.map(jnp.copy, sim0.server.params)
  steps, inputs = eng.plan(np.array([0, 1, 2]))
  cu = fl.client_update(built.algorithm, eng.sampler, steps[0])
  rows = fl.engine.gather(sim0.clients, inputs[0].id)
  ups, _, _ = jax.vmap(cu, in_axes=(None, 0, 0, None, 0))(
    sim0.server, rows, jax.tree.map(jnp.asarray, inputs[0]), data,
    jax.random.split(jax.random.key(1), 3))
  moved = [max(float(jnp.abs(d[k]).max()) for d in jax.tree.leaves(ups["delta"]))
           for k in range(3)]
  assert moved[0] > 1e-4 and moved[1] == 0.0 and moved[2] == 0.0
  assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), before,
                                   sim0.server.params))


def test_lower_bound_work_skips_unlabeled_clients(setup):
  data, twin, _ = setup
  built = ts.make("fedavg_lower", twin, ts.TwinSightConfig(), ts.AugConfig(), num_clients=K,
                  num_classes=C, client_tx=fl.client_sgd(LR), batch_size=B)
  eng = fl.Engine(built.algorithm, fl.EngineConfig(batch_size=B), data)
  np.testing.assert_array_equal(eng.steps_host, [3, 0, 0])
  np.testing.assert_array_equal(eng.weight_host, [11, 0, 0])


def test_settings_reference_ids_and_pd_split():
  lab = ts.pc_labeled("fashion_mnist", 10, 0.6)
  np.testing.assert_array_equal(np.flatnonzero(lab == 0), sorted([4, 8, 6, 0, 7, 2]))
  assert ts.reference_unlabeled_ids("cifar10", 10, 0.8) == [0, 7, 5, 4, 9, 2, 1, 3]
  assert int((ts.pc_labeled("mnist", 7, 0.6, seed=3) == 0).sum()) == 5   # random: ceil(4.2)
  parts = [np.arange(0, 30), np.arange(30, 131)]
  lb, ulb = ts.pd_split(parts, 0.05, seed=0)
  assert [len(a) for a in lb] == [2, 6]                                   # ceil(0.05 n_k)
  for p, a, b in zip(parts, lb, ulb):
    assert sorted(np.concatenate([a, b]).tolist()) == p.tolist() and not set(a) & set(b)


def test_views_identity_without_randomness_and_flip_is_exact():
  x = jnp.asarray(np.random.RandomState(0).rand(5, 6, 1), jnp.float32)
  np.testing.assert_array_equal(ts.crop_flip(x, jax.random.key(0), 0, flip=False), x)
  outs = [np.asarray(ts.crop_flip(x, jax.random.key(i), 0)) for i in range(8)]
  assert all(np.array_equal(o, x) or np.array_equal(o, x[:, ::-1]) for o in outs)
  assert any(np.array_equal(o, x[:, ::-1]) for o in outs)
  ra = ts.rand_augment(x, jax.random.key(1), 3, 5)
  assert ra.shape == x.shape and float(ra.min()) >= 0 and float(ra.max()) <= 1
  xb = jnp.stack([x, x])
  w, s = ts.views(xb, jax.random.key(2), ts.AugConfig(crop_pad=1))
  assert w.shape == s.shape == xb.shape
  assert not np.array_equal(np.asarray(w[0]), np.asarray(w[1]))   # one key per example


def test_resnet_twin_features_and_projector_shapes():
  twin = ts.make_twin(ts.BackboneConfig(kind="resnet", resnet_stages=(1, 1), resnet_width=4), C,
                      jnp.zeros((2, 8, 8, 3)), proj_hidden=6, proj_dim=5)
  params, state = twin.model.init(jax.random.key(0))
  x = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3))
  (feat, logits), new_state = twin.sup(params, state, x, True)
  assert feat.shape == (2, 8) and logits.shape == (2, C) and "batch_stats" in new_state
  f, p, q = twin.unsup(twin.unsup_init(jax.random.key(2)), x)
  assert f.shape == (2, 8) and p.shape == q.shape == (2, 5)
