"""FedAvg, FedProx, SCAFFOLD and FedNova against an independent NumPy reference.

The reference shares no code with the engine: a float64 NumPy loop over clients
with its own 1-hidden-layer tanh MLP and hand-derived gradients, its own
PyTorch-style SGD (decay before heavy-ball momentum) and the server rules as the
papers write them (SCAFFOLD option II, Karimireddy et al. 2020, Alg. 1; FedNova,
Wang et al. 2020, with a_k summed term by term rather than in closed form).
What it takes from jaxlab's documented contract, recomputed here rather than
called: the local step count ``E·ceil(n_k/B)``, the wrap-around epoch batches
and the key plan of their permutations (docs/federated.md), with partial
participation (``RandomState(r).choice``) and heterogeneous client sizes.
The engine runs in float32, so agreement is to ~1e-6 (asserted <= 1e-5).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab import federated as fl
from jaxlab.core.errors import ConfigError

SIZES = (3, 5, 9, 14, 21, 30)      # n_k: 1 to 8 batches per epoch
K, S, B, E, ROUNDS = len(SIZES), 3, 4, 2, 4
D_IN, HID, C = 5, 4, 3
LR, WD = 0.1, 1e-3
ATOL = 1e-5


# ---- data, model, batch order ------------------------------------------------------
def _data():
  rs = np.random.RandomState(0)
  n = sum(SIZES)
  x = rs.randint(0, 256, (n, D_IN)).astype(np.uint8)
  y = rs.randint(0, C, n)
  parts = np.split(rs.permutation(n), np.cumsum(SIZES)[:-1])
  return x, y, parts


def _init_params():
  rs = np.random.RandomState(1)
  return {"w1": rs.normal(0, 0.5, (D_IN, HID)), "b1": rs.normal(0, 0.1, HID),
          "w2": rs.normal(0, 0.5, (HID, C)), "b2": rs.normal(0, 0.1, C)}


def _model() -> fl.Model:
  p0 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), _init_params())

  def apply(params, model_state, x, train):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"], model_state

  return fl.Model(lambda key: (p0, {}), apply)


def _ids(r):
  return np.random.RandomState(r).choice(range(K), S, replace=False)


def _batch_rows(key, r, k, parts):
  """Sample ids of client k's local steps in round r: permutation e of epoch e from
  ``uniform(fold_in(DATA key, e))`` over the n_max table slots (DATA = 1, clients tag
  1001), batch j = positions ``(j·B + arange(B)) mod n_k``."""
  n_max = max(SIZES)
  ck = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, r), 1001), k)
  dkey = jax.random.fold_in(ck, 1)
  n = len(parts[k])
  spe = -(-n // B)
  orders = []
  for e in range(E):
    u = np.asarray(jax.random.uniform(jax.random.fold_in(dkey, e), (n_max,)))
    u = np.where(np.arange(n_max) < n, u, np.inf)
    orders.append(parts[k][np.argsort(u, kind="stable")[:n]])
  return [orders[min(t // spe, E - 1)][(t % spe * B + np.arange(B)) % n] for t in range(E * spe)]


# ---- the reference: float64 NumPy ------------------------------------------------------
def _loss_grad(p, x, y):
  """Mean softmax cross-entropy of the tanh MLP and its gradient, by hand."""
  h = np.tanh(x @ p["w1"] + p["b1"])
  z = h @ p["w2"] + p["b2"]
  z = z - z.max(1, keepdims=True)
  prob = np.exp(z) / np.exp(z).sum(1, keepdims=True)
  loss = -np.log(prob[np.arange(len(y)), y]).mean()
  dz = prob.copy()
  dz[np.arange(len(y)), y] -= 1.0
  dz /= len(y)
  dpre = (dz @ p["w2"].T) * (1.0 - h ** 2)
  return loss, {"w1": x.T @ dpre, "b1": dpre.sum(0), "w2": h.T @ dz, "b2": dz.sum(0)}


def _tmap(f, *trees):
  return {k: f(*[t[k] for t in trees]) for k in trees[0]}


def _zeros():
  return _tmap(np.zeros_like, _init_params())


def reference(alg, *, momentum=0.0, wd=0.0, mu=0.0, weight_mode=None, server_scale="paper",
              persist_opt=False, key=None):
  """Per-round server params (and SCAFFOLD c, c_k) of ``ROUNDS`` rounds."""
  x, y, parts = _data()
  xf = x.astype(np.float64) / 255.0
  w = _init_params()
  c, c_k = _zeros(), [_zeros() for _ in range(K)]
  mom = [_zeros() for _ in range(K)]          # persisted momentum buffers
  out = []
  for r in range(ROUNDS):
    ids = _ids(r)
    ys, dcs, a_ks, losses = [], [], [], []
    for k in ids:
      yk = dict(w)
      m = mom[k] if persist_opt else _zeros()
      gsum = _zeros()
      rows = _batch_rows(key, r, k, parts)
      for t, rr in enumerate(rows):
        loss, g = _loss_grad(yk, xf[rr], y[rr])
        losses.append(loss)
        if alg == "fedprox":
          g = _tmap(lambda g, a, b: g + mu * (a - b), g, yk, w)
        g = _tmap(lambda g, p: g + wd * p, g, yk)            # decay before momentum
        gsum = _tmap(np.add, gsum, g)
        if alg == "scaffold":
          g = _tmap(lambda g, cc, ck: g + cc - ck, g, c, c_k[k])
        m = _tmap(lambda m, d: momentum * m + d, m, g)
        yk = _tmap(lambda p, m: p - LR * m, yk, m)
      mom[k] = m
      tau = len(rows)
      ys.append(yk)
      if alg == "scaffold":
        if momentum == 0.0:   # option II as printed: c_k - c + (x - y)/(K·lr)
          new = _tmap(lambda ck, cc, a, b: ck - cc + (a - b) / (tau * LR), c_k[k], c, w, yk)
        else:                 # the mean local gradient it estimates
          new = _tmap(lambda s: s / tau, gsum)
        dcs.append(_tmap(np.subtract, new, c_k[k]))
        c_k[k] = new
      # FedNova's a_k = ||a||_1, a_s = sum_{t >= s} rho^(t-s) over local steps s.
      a_ks.append(sum(sum(momentum ** (t - s) for t in range(s, tau)) for s in range(tau)))
    n = np.array([len(parts[k]) for k in ids], np.float64)
    mode = weight_mode or ("uniform" if alg == "scaffold" else "n_k")   # the defaults
    p = np.full(S, 1.0 / S) if mode == "uniform" else n / n.sum()
    if alg in ("fedavg", "fedprox"):
      w = _tmap(lambda *v: sum(pi * vi for pi, vi in zip(p, v)), *ys)
    elif alg == "scaffold":
      w = _tmap(lambda w0, *v: w0 + sum(pi * (vi - w0) for pi, vi in zip(p, v)), w, *ys)
      scale = 1.0 / K if server_scale == "paper" else 1.0 / S   # (|S|/K)·mean or mean
      c = _tmap(lambda c0, *d: c0 + scale * sum(d), c, *dcs)
    elif alg == "fednova":
      tau_eff = float(np.dot(p, a_ks))
      d = _tmap(lambda w0, *v: sum(pi * (w0 - vi) / a for pi, vi, a in zip(p, v, a_ks)),
                w, *ys)
      w = _tmap(lambda w0, dd: w0 - tau_eff * dd, w, d)
    out.append({"params": w, "c": c, "c_k": [dict(ck) for ck in c_k],
                "loss": float(np.mean(losses))})
  return out


# ---- the engine -----------------------------------------------------------------------
def _engine(alg, *, momentum=0.0, wd=0.0, mu=0.0, weight_mode=None, server_scale="paper",
            persist_opt=False):
  x, y, parts = _data()
  tx = fl.client_sgd(LR, momentum=momentum, weight_decay=wd)
  kw = {"persist_opt_state": persist_opt}
  if weight_mode is not None:
    kw["weight_mode"] = weight_mode
  if alg == "fedprox":
    kw["mu"] = mu
  if alg == "scaffold":
    kw["server_scale"] = server_scale
  fed_alg = fl.algorithms.ALGORITHMS[alg](_model(), tx, num_clients=K, **kw)
  return fl.Engine(fed_alg, fl.EngineConfig(batch_size=B, local_epochs=E), fl.make_fed_data(
    x, y, parts))


def _c_k_table(sim):
  row = sim.clients["alg"]
  return row["c_k"] if "c_k" in row else row


CASES = {
  "fedavg": dict(alg="fedavg", momentum=0.5, wd=WD),
  "fedavg_persistent_momentum": dict(alg="fedavg", momentum=0.5, persist_opt=True),
  "fedprox": dict(alg="fedprox", mu=0.3, momentum=0.5, wd=WD),
  "scaffold": dict(alg="scaffold"),
  "scaffold_momentum": dict(alg="scaffold", momentum=0.5, wd=WD),
  "scaffold_persistent_momentum": dict(alg="scaffold", momentum=0.5, persist_opt=True),
  "scaffold_nk_sampled": dict(alg="scaffold", weight_mode="n_k", server_scale="sampled", wd=WD),
  "fednova": dict(alg="fednova"),
  "fednova_momentum": dict(alg="fednova", momentum=0.5, wd=WD),
  "fednova_uniform_momentum": dict(alg="fednova", momentum=0.9, weight_mode="uniform"),
}


def _check(sim, ref, alg, what):
  got = jax.tree.map(np.asarray, sim.server.params)
  for name in ref["params"]:
    np.testing.assert_allclose(got[name], ref["params"][name], rtol=0, atol=ATOL,
                               err_msg=f"{what}: params {name}")
  if alg == "scaffold":
    c = jax.tree.map(np.asarray, sim.server.alg)
    table = jax.tree.map(np.asarray, _c_k_table(sim))
    for name in ref["c"]:
      np.testing.assert_allclose(c[name], ref["c"][name], rtol=0, atol=ATOL,
                                 err_msg=f"{what}: c {name}")
      np.testing.assert_allclose(table[name], np.stack([ck[name] for ck in ref["c_k"]]),
                                 rtol=0, atol=ATOL, err_msg=f"{what}: c_k {name}")


@pytest.mark.parametrize("case", list(CASES))
def test_engine_equals_numpy_reference(case):
  kw = dict(CASES[case])
  alg = kw["alg"]
  key = jax.random.key(7)
  ref = reference(key=key, **kw)
  eng = _engine(**kw)
  sim = eng.init(jax.random.key(0))
  p0 = jax.tree.map(np.asarray, sim.server.params)
  np.testing.assert_allclose(p0["w1"], _init_params()["w1"], atol=1e-7)
  for r in range(ROUNDS):
    sim, m = eng.run_round(sim, _ids(r), key)
    _check(sim, ref[r], alg, f"{case}, vmapped engine, round {r + 1}")
    np.testing.assert_allclose(float(m["loss"]), ref[r]["loss"], rtol=1e-5)
  moved = np.abs(ref[-1]["params"]["w1"] - _init_params()["w1"]).max()
  assert moved > 100 * ATOL   # the comparison is not vacuous


@pytest.mark.parametrize("case", ["scaffold_momentum", "fednova_momentum"])
def test_stepped_engine_equals_numpy_reference(case):
  kw = dict(CASES[case])
  key = jax.random.key(7)
  ref = reference(key=key, **kw)
  eng = _engine(**kw)
  sim = eng.init(jax.random.key(0))
  for r in range(ROUNDS):
    sim, _ = fl.stepped.run_round(eng, sim, _ids(r), key)
  _check(sim, ref[-1], kw["alg"], f"{case}, stepped engine, round {ROUNDS}")


def test_reference_gradient_matches_finite_differences():
  """The hand-written gradient the reference relies on (central differences, f64)."""
  x, y, _ = _data()
  xf, p = x[:6].astype(np.float64) / 255.0, _init_params()
  _, g = _loss_grad(p, xf, y[:6])
  for name in p:
    for i in range(p[name].size):
      up = {k: v.copy() for k, v in p.items()}
      dn = {k: v.copy() for k, v in p.items()}
      up[name].flat[i] += 1e-6
      dn[name].flat[i] -= 1e-6
      fd = (_loss_grad(up, xf, y[:6])[0] - _loss_grad(dn, xf, y[:6])[0]) / 2e-6
      np.testing.assert_allclose(g[name].flat[i], fd, rtol=1e-5, atol=1e-8)


def test_refuses_optimizers_whose_c_k_or_a_k_would_be_wrong():
  model = _model()
  adam = optax.inject_hyperparams(optax.adam)(learning_rate=0.01)
  nesterov = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9, nesterov=True)
  for name in ("scaffold", "fednova"):
    with pytest.raises(ConfigError, match="client_sgd"):
      fl.algorithms.ALGORITHMS[name](model, adam, num_clients=K)
    with pytest.raises(ConfigError, match="client_sgd"):
      fl.algorithms.ALGORITHMS[name](model, nesterov, num_clients=K)
    with pytest.raises(ConfigError, match="injected learning_rate"):
      fl.algorithms.ALGORITHMS[name](model, optax.sgd(0.1), num_clients=K)
  with pytest.raises(ConfigError, match="persist_opt_state"):
    fl.algorithms.fednova(model, fl.client_sgd(0.1, momentum=0.9), num_clients=K,
                          persist_opt_state=True)
  # allowed: FedNova persisting a momentum-free optimizer, SCAFFOLD with momentum
  fl.algorithms.fednova(model, fl.client_sgd(0.1), num_clients=K, persist_opt_state=True)
  fl.algorithms.scaffold(model, fl.client_sgd(0.1, momentum=0.9), num_clients=K,
                         persist_opt_state=True)
