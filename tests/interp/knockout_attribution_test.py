"""Knockout sweeps, attribution patching, sign convention, attention mass, metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from jaxlab.interp import attention, attribution, fast, knockout, metrics, patching
from jaxlab.interp.testing import random_pair as make_pair
from jaxlab.interp.testing import tiny_model as tiny
from jaxlab.models import decoder as dec


def test_knockout_sweep_matches_single_runs():
  cfg, params = tiny(gqa=True)
  pr = make_pair(b=4)
  targets = jnp.array([3, 4, 5, 6])
  m = metrics.logit_diff(targets, jnp.arange(10, 16))
  zm = knockout.mean_z(cfg, params, pr.ids_r, pr.mask_r)
  masks = np.concatenate([np.zeros((1, cfg.n_layers, cfg.n_heads), np.float32),
                          knockout.random_k_masks(3, 2, cfg.n_layers, cfg.n_heads, seed=5)])
  assert (masks[1:].sum((1, 2)) == 2).all()
  res = knockout.knockout_sweep(cfg, params, pr.ids_r, pr.mask_r, targets, m, masks,
                                kind="mean", z_mean=zm, chunk=2)
  logits, _ = dec.apply(cfg, params, pr.ids_r, pr.mask_r)
  np.testing.assert_allclose(res["metric"][0], m(logits[:, -1]), rtol=1e-5, atol=1e-5)
  iv = knockout.intervention("mean", jnp.asarray(masks[2]), b=4, t=pr.ids_r.shape[1], z_mean=zm)
  lg2 = patching.run_patched(cfg, params, pr.ids_r, pr.mask_r, iv)
  np.testing.assert_allclose(res["metric"][2], m(lg2[:, -1]), rtol=1e-5, atol=1e-5)
  assert np.abs(res["metric"][2] - res["metric"][0]).max() > 1e-4
  # Zero ablation through z_scale equals mean ablation with a zero mean.
  z0 = knockout.knockout_sweep(cfg, params, pr.ids_r, pr.mask_r, targets, m, masks, kind="zero")
  zz = knockout.knockout_sweep(cfg, params, pr.ids_r, pr.mask_r, targets, m, masks, kind="mean",
                               z_mean=jnp.zeros_like(zm))
  np.testing.assert_allclose(z0["metric"], zz["metric"], rtol=1e-5, atol=1e-5)


def test_random_k_controls_exclude_and_match_layers():
  top = np.zeros((5, 4), bool)
  top[1, :2] = top[3, 0] = True
  r = knockout.random_k_masks(6, 3, 5, 4, exclude=top, match_layers=top, seed=1)
  assert (r.sum((1, 2)) == 3).all() and not (r.astype(bool) & top).any()
  assert (r.sum(-1) == top.sum(-1)).all()
  mean, lo, hi = knockout.mean_ci(np.array([1.0, 2.0, 3.0]))
  assert lo < mean == 2.0 < hi


def test_attribution_matches_the_fast_path_to_first_order():
  cfg, params = tiny()
  pr = make_pair()
  m = metrics.logit_diff(jnp.arange(3, 6), jnp.arange(10, 16))
  atp = attribution.attribution_patch(cfg, params, pr, m, convention="path")
  _, acts_r, _, acts_c = patching.reference_runs(cfg, params, pr)
  eps = 1e-2
  acts_eps = dict(acts_c, z=acts_r["z"] + eps * (acts_c["z"] - acts_r["z"]))
  heads, _ = fast._fast_core(cfg, m, params, acts_r, acts_eps, include_mlps=True, mlps=False)
  m_ref = atp.m_ref
  finite = (heads - m_ref[None, None]) / eps
  lin = atp.heads - m_ref[None, None]
  np.testing.assert_allclose(lin, finite, atol=0.03 * float(jnp.abs(finite).max()))
  exact = fast.path_patch_fast(cfg, params, pr, m)
  a, e = atp.head_scores("diff"), exact.head_scores("diff")
  agree = attribution.agreement(a, e, ks=(3,))
  # Independent references: scipy's Spearman and a hand-sorted top-3 set.
  rho = scipy.stats.spearmanr(a.ravel(), e.ravel()).statistic
  np.testing.assert_allclose(agree["spearman"], rho, rtol=1e-12)
  low = lambda x: {int(i) for i in np.argsort(x.ravel())[:3]}
  assert agree["top3_overlap"] == len(low(a) & low(e)) / 3
  # First-order agreement on this tiny model is strong (measured 0.91), and a map that
  # ranks the heads the other way round is scored as anti-correlated.
  assert agree["spearman"] > 0.8
  assert attribution.agreement(-a, e, ks=(3,))["spearman"] < -0.8


def test_sign_convention_answer_writing_head_ranks_first():
  """e.3 test 8: a head that writes the answer direction gets the most negative score."""
  cfg, params = tiny()
  pr = make_pair()
  target = jnp.array([7, 7, 7])
  _, acts_r, _, acts_c = patching.reference_runs(cfg, params, pr)
  l, h = cfg.n_layers - 1, 1
  u = (acts_r["z"][l, :, h] - acts_c["z"][l, :, h]).mean(0)
  direction = params["embed"][7] - params["embed"][10:16].mean(0)
  wo = params["layers"]["wo"].at[l, h].set(40.0 * jnp.outer(u / jnp.linalg.norm(u), direction))
  params = dict(params, layers=dict(params["layers"], wo=wo))
  m = metrics.logit_diff(target, jnp.arange(10, 16))
  res = fast.path_patch_fast(cfg, params, pr, m)
  scores = res.head_scores("diff")
  order = np.argsort(scores.ravel())
  assert divmod(int(order[0]), cfg.n_heads) == (l, h) and scores[l, h] < 0


def test_attention_mass_sums_to_one_over_all_real_tokens():
  cfg, params = tiny()
  pr = make_pair()
  spans = {"all": np.asarray(pr.mask_r, bool), "last": np.eye(7, dtype=bool)[[6, 6, 6]]}
  mass = attention.attention_mass(cfg, params, pr.ids_r, pr.mask_r, spans)
  np.testing.assert_allclose(mass["all"], 1.0, rtol=1e-5)
  assert mass["last"].shape == (cfg.n_layers, cfg.n_heads) and (mass["last"] < 1).all()


def test_metrics_values():
  logits = jnp.array([[1.0, 2.0, 4.0, 8.0], [2.0, 2.0, 2.0, 6.0]])
  np.testing.assert_allclose(metrics.logit_diff(jnp.array([3, 3]), jnp.array([0, 1]))(logits),
                             [6.5, 4.0])
  # The target is excluded from "others".
  np.testing.assert_allclose(metrics.logit_diff(jnp.array([0, 0]), jnp.array([0, 1]))(logits),
                             [-1.0, 0.0])
  f = metrics.spt_ratio(2, [2, 3])(logits)
  np.testing.assert_allclose(f, [4 / 12, 2 / 8])
  np.testing.assert_allclose(metrics.spt_score(jnp.array([[0.5, 0.25]]), f), [
    100 * np.mean([(0.5 - 1 / 3) * 3, 0.0])], rtol=1e-6)
  np.testing.assert_allclose(metrics.prob(jnp.array([3, 0]))(logits),
                             jax.nn.softmax(logits)[jnp.arange(2), jnp.array([3, 0])], rtol=1e-6)
  s = np.array([[-5.0, 0.0], [-3.0, 2.0]])
  assert metrics.concentration(s, 1) == 5 / 8 and metrics.n_for_share(s, 0.9) == 2
  assert metrics.topk_overlap(s, s, 2) == 1.0 and abs(metrics.spearman(s, s) - 1) < 1e-12
