"""The compiled APW loop == a numpy transcription of the released loop (sklearn refits)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from jaxlab.core.errors import ConfigError, DataError
from jaxlab.methods.apw import data as apw_data
from jaxlab.methods.apw import loop

GROUPS = ((1, 1), (1, 0), (0, 1), (0, 0))


def _reference(kind, d, eta, alpha, T):
  """The release's loop order, written with numpy + sklearn (tight tolerance)."""
  x, y, a, xt, yt, at = d[:6]
  masks = [(a == ga) & (y == gy) for ga, gy in GROUPS]
  lam, s, out = np.ones(4), np.ones(len(y)), []
  for _ in range(T):
    clf = LogisticRegression(solver="newton-cholesky", tol=1e-12, max_iter=100)
    clf.fit(x, y, sample_weight=s)
    yh = clf.predict(x)
    u = np.exp(-eta * np.abs(clf.predict_proba(x)[:, 0].astype(np.float32) - 0.5))
    s = np.zeros(len(y))
    for g, m in enumerate(masks):
      s[m] = lam[g] * u[m] * m.sum() / u[m].sum()
    if kind == "eop":
      s[y == 0] = 1.0
    r = np.ones(4)
    for g, (ga, gy) in enumerate(GROUPS):
      A = a == ga
      if kind == "dp":
        hit = yh if gy else 1 - yh
        r[g] = (A.sum() * hit.sum() + alpha) / (len(y) * hit[A].sum())
      elif gy == 1 or kind == "eo":
        Yg, hit = (y == gy), (yh if gy else 1 - yh)
        r[g] = ((A & Yg).sum() * hit[Yg].sum() + alpha) / (Yg.sum() * hit[A & Yg].sum() + alpha)
    out.append((lam.copy(), clf.predict(xt)))
    lam = lam * r
  return out


T = 4


def _cfg(kind, alpha=10.0, **kw):
  # Shared configs and shapes across tests, so compiled programs are reused.
  return loop.APWConfig(kind=kind, iterations=T, alpha=alpha, hessian_dtype="", **kw)


@pytest.mark.parametrize("kind,eta,alpha", [("eop", 1.2, 0.0), ("eo", 1.0, 10.0),
                                            ("dp", 2.8, 10.0)])
def test_loop_matches_reference(kind, eta, alpha):
  d = apw_data.synthetic(0)
  cfg = _cfg(kind, alpha)
  _, h = loop.run_sweep(cfg, apw_data.stack([d]), [eta])
  ref = _reference(kind, d, eta, alpha, T)
  for t, (lam, yhat) in enumerate(ref):
    np.testing.assert_allclose(h["lam"][0, 0, t], lam, rtol=1e-6)
    acc = (yhat == d.y_test).mean()
    assert np.isclose(h["acc"][0, 0, t], acc), (t, h["acc"][0, 0, t], acc)
  assert h["grad_norm"].max() < 1e-8


def test_sweep_equals_single_runs_and_warm_start():
  ds = apw_data.stack([apw_data.synthetic(0), apw_data.synthetic(1)])
  cfg = _cfg("eo")
  _, grid = loop.run_sweep(cfg, ds, [0.0, 2.0], seeds=(0, 1))
  assert grid["acc"].shape == (2, 2, T)
  for i in range(2):
    one = apw_data.stack([apw_data.FairData(*(v[i] for v in ds[:6]))])
    _, h = loop.run_sweep(cfg, one, [2.0], seeds=(i,))
    np.testing.assert_allclose(grid["lam"][i, 1], h["lam"][0, 0], rtol=1e-9)
    np.testing.assert_allclose(grid["d_eo"][i, 1], h["d_eo"][0, 0])
  warm = _cfg("eo", warm_start=True, warm_steps=4)
  _, hw = loop.run_sweep(warm, ds, [0.0, 2.0], seeds=(0, 1))
  np.testing.assert_allclose(hw["lam"], grid["lam"], rtol=1e-6)
  assert hw["grad_norm"].max() < 1e-8


def test_resume_in_blocks_equals_one_call():
  ds = apw_data.stack([apw_data.synthetic(2)])
  cfg = _cfg("dp")
  _, full = loop.run_sweep(cfg, ds, [1.0])
  st, a = loop.run_sweep(cfg, ds, [1.0], length=2)
  _, b = loop.run_sweep(cfg, ds, [1.0], length=2, state=st)
  np.testing.assert_allclose(np.concatenate([a["d_dp"], b["d_dp"]], 2), full["d_dp"])
  np.testing.assert_allclose(np.concatenate([a["lam"], b["lam"]], 2), full["lam"])
  np.testing.assert_array_equal(b["step"][0, 0], [3, 4])


def test_baselines():
  ds = apw_data.stack([apw_data.synthetic(3)])
  cfg = _cfg("eo")
  b = loop.baselines(cfg, ds)
  _, h = loop.run_sweep(cfg, ds, [1.0])
  assert np.isclose(b["erm"]["acc"][0], h["acc"][0, 0, 0])  # iteration 1 is ERM
  assert b["kamiran_calders"]["d_dp"][0] < b["erm"]["d_dp"][0]


def test_bad_inputs():
  d = apw_data.synthetic(0)
  bad = d._replace(a_train=d.a_train + (np.arange(len(d.a_train)) % 3 == 0))
  with pytest.raises(DataError, match="binary"):
    loop.run_sweep(loop.APWConfig(iterations=1), apw_data.stack([bad]), [1.0])
  no_pos = d._replace(y_train=d.y_train * (1 - d.a_train))
  with pytest.raises(DataError, match="subgroup"):
    loop.validate(apw_data.stack([no_pos]), "eop")
  with pytest.raises(ConfigError, match="kind"):
    loop.APWConfig(kind="eq")
  df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "g": ["m", "f", "m", "f"], "y": [0, 1, 1, 0]})
  with pytest.raises(DataError, match="'race' not found"):
    apw_data.from_frames(df, df, label="y", positive=1, sensitive="race", privileged="m")
  with pytest.raises(DataError, match="both values"):
    apw_data.from_frames(df, df, label="y", positive=1, sensitive="g", privileged="x")
  with pytest.raises(DataError, match="binary"):
    apw_data.check_binary(np.array([0, 1, 2]), "a")


def test_damped_multiplier_step():
  ds = apw_data.stack([apw_data.synthetic(0)])
  _, h1 = loop.run_sweep(_cfg("eo"), ds, [2.0])  # shares the parity test's program
  _, hg = loop.run_sweep(_cfg("eo", multiplier_step=0.5), ds, [2.0], length=2)
  # lam(2) = ratio(1)**gamma, and ratio(1) comes from the same s = 1 fit.
  np.testing.assert_allclose(hg["lam"][0, 0, 1], np.sqrt(h1["lam"][0, 0, 1]), rtol=1e-9)
  assert h1["finite"].all() and hg["finite"].all()


def test_mlp_variant_runs_and_seeds_matter():
  ds = apw_data.stack([apw_data.synthetic(0)] * 2)  # same data, different init seeds
  cfg = loop.APWConfig(kind="eo", iterations=2, model="mlp", mlp_hidden=(8,), mlp_steps=60,
                       x64=False)
  _, h = loop.run_sweep(cfg, ds, [1.0], seeds=(0, 1))
  assert h["finite"].all() and np.isfinite(h["acc"]).all()
  assert (h["acc"][:, 0, 0] > 0.55).all()
  assert not np.array_equal(h["lam"][0, 0, 1], h["lam"][1, 0, 1])


def test_sweep_sharded_over_devices_equals_unsharded():
  import jax

  from jaxlab.core import axes
  from jaxlab.core.sharding import make_mesh

  mesh = make_mesh({axes.SWEEP: 2}, devices=jax.devices()[:2])
  ds = apw_data.stack([apw_data.synthetic(0), apw_data.synthetic(1)])
  cfg = _cfg("eo")
  _, ref = loop.run_sweep(cfg, ds, [0.0, 2.0], seeds=(0, 1))
  st, sh = loop.run_sweep(cfg, ds, [0.0, 2.0], seeds=(0, 1), mesh=mesh)
  np.testing.assert_allclose(sh["lam"], ref["lam"], rtol=1e-9)
  assert len(st.s.sharding.device_set) == 2


def test_cg_solver_sweep_matches_reference():
  # Newton-CG with the preconditioner shared across etas, warm-started: every eta of one
  # vmapped call equals the released loop (sklearn refits from scratch).
  d = apw_data.synthetic(1)
  cfg = _cfg("eo", 10.0, solver="cg", warm_start=True, warm_steps=4, cg_iters=4, chunks=8)
  _, h = loop.run_sweep(cfg, apw_data.stack([d]), [0.0, 2.8])
  for e, eta in enumerate((0.0, 2.8)):
    for t, (lam, yhat) in enumerate(_reference("eo", d, eta, 10.0, T)):
      np.testing.assert_allclose(h["lam"][0, e, t], lam, rtol=1e-6)
      assert np.isclose(h["acc"][0, e, t], (yhat == d.y_test).mean()), (eta, t)
  assert h["grad_norm"].max() < 1e-8
