"""Path / activation patching: identity, everything-from-x_c, fast path == naive (e.3)."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.interp import fast, metrics, patching
from jaxlab.interp.testing import random_pair as make_pair
from jaxlab.interp.testing import tiny_model as tiny
from jaxlab.models import decoder as dec


def _metric(b):
  return metrics.logit_diff(jnp.arange(3, 3 + b), jnp.arange(10, 16))


@pytest.mark.parametrize("gqa,include_mlps", [(False, True), (True, True), (True, False)])
def test_fast_path_equals_naive(gqa, include_mlps):
  cfg, params = tiny(gqa)
  pr = make_pair()
  m = _metric(3)
  slow = patching.path_patch_naive(cfg, params, pr, m, include_mlps=include_mlps, mlps=True)
  quick = fast.path_patch_fast(cfg, params, pr, m, include_mlps=include_mlps, mlps=True)
  scale = float(jnp.abs(slow.heads).max())
  assert float(jnp.abs(slow.heads - slow.m_ref[None, None]).max()) > 1e-3 * scale  # non-trivial
  np.testing.assert_allclose(quick.heads, slow.heads, atol=1e-5 * scale, rtol=1e-5)
  np.testing.assert_allclose(quick.mlps, slow.mlps, atol=1e-5 * scale, rtol=1e-5)
  np.testing.assert_allclose(quick.m_ref, slow.m_ref, rtol=1e-6)
  # Chunking over prompts changes nothing.
  chunked = fast.path_patch_fast(cfg, params, pr, m, include_mlps=include_mlps, batch_size=2)
  np.testing.assert_allclose(chunked.heads, quick.heads, atol=1e-5 * scale)


def test_freezing_attn_inputs_equals_freezing_later_z():
  """e.3 test 4: freezing later attention inputs at T == freezing later heads' z at T."""
  cfg, params = tiny()
  pr = make_pair()
  logits_r, acts_r, _, acts_c = patching.reference_runs(cfg, params, pr)
  l, h = 0, 2
  hot = jnp.zeros((cfg.n_layers, cfg.n_heads)).at[l, h].set(1.0)
  iv = patching.path_intervention(cfg, jnp.int32(l), hot, jnp.zeros(cfg.n_layers), acts_r,
                                  acts_c, pr.last())
  a = patching.run_patched(cfg, params, pr.ids_r, pr.mask_r, iv)[:, -1]
  later = (jnp.arange(cfg.n_layers) > l)[:, None] * jnp.ones((1, cfg.n_heads))
  z_val = jnp.where(hot[:, None, :, None] > 0, acts_c["z"], acts_r["z"])
  iv2 = dec.Intervention(z_pos=pr.last(), z_mask=jnp.maximum(later, hot), z_value=z_val)
  b = patching.run_patched(cfg, params, pr.ids_r, pr.mask_r, iv2)[:, -1]
  np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-5)
  assert float(jnp.abs(a - logits_r).max()) > 1e-3


def test_identity_patch_is_exact():
  cfg, params = tiny()
  pr = make_pair()
  _, acts = dec.apply(cfg, params, pr.ids_r, pr.mask_r, capture=dec.Capture(z=True, mlp_out=True))
  ones = jnp.ones((cfg.n_layers, cfg.n_heads))
  iv = dec.Intervention(z_pos=pr.last(), z_mask=ones * 0, z_value=acts["z"][:, :, -1])
  base = patching.run_patched(cfg, params, pr.ids_r, pr.mask_r, iv)
  iv_self = iv._replace(z_mask=ones)
  same = patching.run_patched(cfg, params, pr.ids_r, pr.mask_r, iv_self)
  np.testing.assert_array_equal(np.asarray(base), np.asarray(same))


def test_everything_from_counterfactual_reproduces_its_logits():
  cfg, params = tiny(gqa=True)
  pr = make_pair(pad=False)
  cap = dec.Capture(z=True, mlp_out=True, resid_pre=True)
  logits_c, acts_c = dec.apply(cfg, params, pr.ids_c, pr.mask_c, capture=cap)
  iv = patching.patch_everything_intervention(acts_c, acts_c["resid_pre"][0], pr.mask_r)
  got = patching.run_patched(cfg, params, pr.ids_r, pr.mask_r, iv)
  np.testing.assert_allclose(got, logits_c, atol=1e-5 * float(jnp.abs(logits_c).max()))


def test_resid_patch_at_all_positions_gives_counterfactual():
  cfg, params = tiny()
  pr = make_pair(pad=False)
  logits_c, acts_c = dec.apply(cfg, params, pr.ids_c, pr.mask_c,
                               capture=dec.Capture(resid_pre=True))
  got = patching.patch_resid(cfg, 1, params, pr.ids_r, pr.mask_r, acts_c["resid_pre"][1],
                             jnp.ones_like(pr.mask_r, bool))
  np.testing.assert_allclose(got, logits_c, atol=1e-4)


def test_activation_patching_fast_equals_naive():
  cfg, params = tiny(gqa=True)
  pr = make_pair()
  m = _metric(3)
  slow = fast.act_patch_naive(cfg, params, pr, m, mlps=True)
  quick = fast.act_patch_fast(cfg, params, pr, m, mlps=True, chunk=5)
  scale = float(jnp.abs(slow.heads).max())
  np.testing.assert_allclose(quick.heads, slow.heads, atol=1e-5 * scale)
  np.testing.assert_allclose(quick.mlps, slow.mlps, atol=1e-5 * scale)


def test_padding_invariance():
  """e.3 test 6: a prompt's map is the same alone and inside a left-padded batch."""
  cfg, params = tiny()
  pr = make_pair(b=3, t=7)
  m = _metric(3)
  batch = fast.path_patch_fast(cfg, params, pr, m)
  # Row 0 has 2 pad tokens; run it alone without them.
  alone = patching.Pair(*(a[:1, 2:] for a in pr))
  single = fast.path_patch_fast(cfg, params, alone, metrics.logit_diff(
    jnp.arange(3, 4), jnp.arange(10, 16)))
  np.testing.assert_allclose(single.heads[..., 0], batch.heads[..., 0], atol=2e-4, rtol=1e-4)


def test_gqa_patching_one_query_head_leaves_group_mates():
  """e.3 test 7: patching query head h changes no other head's z at that layer."""
  cfg, params = tiny(gqa=True)
  pr = make_pair()
  _, acts_c = dec.apply(cfg, params, pr.ids_c, pr.mask_c, capture=dec.Capture(z=True))
  _, acts_r = dec.apply(cfg, params, pr.ids_r, pr.mask_r, capture=dec.Capture(z=True))
  hot = jnp.zeros((cfg.n_layers, cfg.n_heads)).at[1, 1].set(1.0)  # group 0 holds heads 0, 1
  iv = dec.Intervention(z_pos=pr.last(), z_mask=hot, z_value=acts_c["z"][:, :, -1])
  _, acts_p = dec.apply(cfg, params, pr.ids_r, pr.mask_r, capture=dec.Capture(z=True),
                        intervene=iv)
  diff = jnp.abs(acts_p["z"][1] - acts_r["z"][1]).max(axis=(0, 1, 3))  # per head
  assert float(diff[1]) > 1e-3 and float(jnp.delete(diff, 1).max()) == 0.0
