"""Head-addressable interface: masks, patches, captures, start/stop layers, KV cache."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.models import decoder
from jaxlab.models.decoder import Capture, Intervention

import decoder_helpers as helpers  # tests/models/conftest.py puts it on sys.path

CFG, GPT2, TOL = helpers.CFG, helpers.GPT2, helpers.TOL
random_params, batch = helpers.random_params, helpers.batch


def run(cfg, params, ids, mask, **kw):
  return decoder.jit_apply(cfg, params, ids, mask, **kw)


@pytest.fixture(scope="module")
def setup():
  return random_params(CFG), *batch()


def test_axis_flip_matches_flat_hf_matrix():
  from jaxlab.models.loaders import common

  cfg = CFG.replace(n_layers=1)
  h_n, kv, d, dm = cfg.n_heads, cfg.kv_heads, cfg.head_dim, cfg.d_model
  rng = np.random.default_rng(0)
  flat = {"model.embed_tokens.weight": rng.normal(size=(41, dm)),
          "model.norm.weight": rng.normal(size=dm), "lm_head.weight": rng.normal(size=(41, dm)),
          "model.layers.0.input_layernorm.weight": rng.normal(size=dm),
          "model.layers.0.post_attention_layernorm.weight": rng.normal(size=dm)}
  a, m = "model.layers.0.self_attn.", "model.layers.0.mlp."
  for n, shape in [("q_proj", (h_n * d, dm)), ("k_proj", (kv * d, dm)), ("v_proj", (kv * d, dm)),
                   ("o_proj", (dm, h_n * d))]:
    flat[a + n + ".weight"] = rng.normal(size=shape)
  for n, shape in [("gate_proj", (48, dm)), ("up_proj", (48, dm)), ("down_proj", (dm, 48))]:
    flat[m + n + ".weight"] = rng.normal(size=shape)
  r = common.TensorReader(flat, flat.__getitem__, "test")
  p = common.llama_params(cfg.replace(tie_embeddings=False), r, lambda n: n)
  r.finish()
  for h in range(h_n):
    rows = slice(h * d, (h + 1) * d)
    np.testing.assert_array_equal(p["layers"]["wq"][0][:, h], flat[a + "q_proj.weight"][rows].T)
    np.testing.assert_array_equal(p["layers"]["wo"][0][h], flat[a + "o_proj.weight"][:, rows].T)
  np.testing.assert_array_equal(p["layers"]["wk"][0][:, 1], flat[a + "k_proj.weight"][d:2 * d].T)


@pytest.mark.parametrize("cfg", [CFG, GPT2], ids=["llama", "gpt2"])
def test_head_mask_of_ones_is_identity_and_zero_equals_removing_wo(cfg):
  params, (ids, mask) = random_params(cfg), batch()
  base, _ = run(cfg, params, ids, mask)
  ones, _ = run(cfg, params, ids, mask, intervene=Intervention(z_scale=jnp.ones((cfg.n_layers, 4))))
  np.testing.assert_array_equal(np.asarray(ones), np.asarray(base))
  scale = jnp.ones((cfg.n_layers, 4)).at[1, 2].set(0.0)
  zeroed, _ = run(cfg, params, ids, mask, intervene=Intervention(z_scale=scale))
  cut = jax.tree.map(lambda x: x, params)
  cut["layers"]["wo"] = params["layers"]["wo"].at[1, 2].set(0.0)
  removed, _ = run(cfg, cut, ids, mask)
  np.testing.assert_allclose(zeroed, removed, **TOL)
  assert np.abs(np.asarray(zeroed - base)).max() > 1e-3


def test_patching_own_z_is_identity_and_everything_from_xc_gives_xc(setup):
  params, ids, mask = setup
  ids_c = jnp.where(mask == 1, (ids * 7 + 3) % 41, 0)
  base, acts = run(CFG, params, ids, mask, capture=Capture(z=True))
  all_heads = jnp.ones((CFG.n_layers, CFG.n_heads))
  own, _ = run(CFG, params, ids, mask, intervene=Intervention(z_mask=all_heads, z_value=acts["z"]))
  np.testing.assert_array_equal(np.asarray(own), np.asarray(base))
  want, c = run(CFG, params, ids_c, mask, capture=Capture(z=True, mlp_out=True))
  emb = jnp.take(params["embed"], ids_c, axis=0)
  iv = Intervention(z_mask=all_heads, z_value=c["z"], mlp_out_mask=jnp.ones(CFG.n_layers),
                    mlp_out_value=c["mlp_out"], embed_value=emb)
  got, _ = run(CFG, params, ids, mask, intervene=iv)
  valid = np.asarray(mask, bool)
  np.testing.assert_allclose(np.asarray(got)[valid], np.asarray(want)[valid], **TOL)


def test_position_restricted_patch_and_gqa_isolation(setup):
  params, ids, mask = setup
  _, acts = run(CFG, params, ids, mask, capture=Capture(z=True))
  l, h, t = 1, 2, ids.shape[1]
  zm = jnp.zeros((CFG.n_layers, CFG.n_heads)).at[l, h].set(1)
  val = jnp.zeros((CFG.n_layers, 3, CFG.n_heads, CFG.head_dim)) + 5.0
  iv = Intervention(z_pos=jnp.full((3,), t - 1), z_mask=zm, z_value=val)
  _, got = run(CFG, params, ids, mask, intervene=iv, capture=Capture(z=True))
  diff = np.abs(np.asarray(got["z"] - acts["z"]))  # [L, b, t, H, d]
  assert np.all(got["z"][l, :, t - 1, h] == 5.0)
  changed = diff.max(axis=(1, 4)) > 1e-5  # [L, t, H]; tiny diffs = other fusion
  assert changed[l, t - 1, h] and changed[l].sum() == 1  # heads sharing h's KV group untouched
  assert not changed[:l].any() and not changed[l + 1:, :t - 1].any()


def test_vmapped_head_sweep_equals_loop(setup):
  params, ids, mask = setup
  _, acts = run(CFG, params, ids, mask, capture=Capture(z=True))
  zc = acts["z"][:, ::-1]  # another row's z as the "counterfactual"
  cands = jnp.eye(CFG.n_layers * CFG.n_heads).reshape(-1, CFG.n_layers, CFG.n_heads)[::3]
  f = lambda zm: decoder.apply(CFG, params, ids, mask, intervene=Intervention(
    z_pos=jnp.full((3,), ids.shape[1] - 1), z_mask=zm, z_value=zc))[0][:, -1]
  swept = jax.jit(jax.vmap(f))(cands)
  for i in (0, 2, len(cands) - 1):
    np.testing.assert_allclose(swept[i], jax.jit(f)(cands[i]), **TOL)


def test_capture_selectors_and_start_stop_layers(setup):
  params, ids, mask = setup
  logits, full = run(CFG, params, ids, mask, capture=Capture.all())
  _, last = run(CFG, params, ids, mask, capture=Capture.all(at="last"))
  pos = jnp.array([7, 3, 6])
  _, idx = run(CFG, params, ids, mask, capture=Capture(z=True, pattern=True, at="index"),
               capture_pos=pos)
  for k in full:
    ax = 3 if k == "pattern" else (1 if k == "resid_final" else 2)
    np.testing.assert_allclose(np.take(np.asarray(full[k]), -1, axis=ax), last[k], **TOL)
  np.testing.assert_allclose(idx["z"][:, 1], full["z"][:, 1, 3], **TOL)
  np.testing.assert_allclose(idx["pattern"][:, 2], full["pattern"][:, 2, :, 6], **TOL)
  head_sum = full["head_out"].sum(3)
  np.testing.assert_allclose(head_sum, full["attn_out"], **TOL)
  assert full["pattern"].shape == (3, 3, 4, 8, 8)
  np.testing.assert_allclose(full["pattern"].sum(-1), 1.0, atol=1e-5)
  resid1, _ = run(CFG, params, ids, mask, stop_layer=1)
  np.testing.assert_allclose(resid1, full["resid_pre"][1], **TOL)
  resumed, part = run(CFG, params, ids, mask, start_layer=1, resid=resid1, capture=Capture(z=True))
  np.testing.assert_allclose(resumed, logits, **TOL)
  assert part["z"].shape[0] == CFG.n_layers - 1


def test_left_padding_invariance(setup):
  params, ids, mask = setup
  batched, _ = run(CFG, params, ids, mask)
  alone, _ = run(CFG, params, ids[2:, 5:], mask[2:, 5:])
  np.testing.assert_allclose(batched[2, 5:], alone[0], **TOL)


@pytest.mark.parametrize("cfg", [CFG, GPT2], ids=["llama", "gpt2"])
def test_extend_prefill_then_decode_equals_full_forward(cfg):
  params, (ids, mask) = random_params(cfg), batch()
  full, acts = run(cfg, params, ids, mask, capture=Capture(z=True, pattern=True))
  cache = decoder.init_cache(cfg, 3, 12)
  pre, _, cache = decoder.jit_extend(cfg, params, ids[:, :-1], mask[:, :-1], cache)
  np.testing.assert_allclose(pre, full[:, :-1], **TOL)
  pre2, _, cache_p = decoder.jit_prefill(cfg, params, ids[:, :-1], mask[:, :-1], 12)
  np.testing.assert_allclose(pre2, pre, **TOL)
  for a, b_ in zip(cache_p, cache):
    np.testing.assert_allclose(a, b_, **TOL)
  last, got, cache2 = decoder.jit_extend(cfg, params, ids[:, -1:], mask[:, -1:], cache,
                                         capture=Capture(pattern=True, at="last"))
  np.testing.assert_allclose(last[:, 0], full[:, -1], **TOL)
  t = ids.shape[1]
  np.testing.assert_allclose(got["pattern"][..., :t], acts["pattern"][..., -1, :], **TOL)
  assert np.all(np.asarray(got["pattern"][..., t:]) == 0)
  assert int(cache2.index) == ids.shape[1]
  # single new token against the cached prefix WITH a head patch == full forward patch at T
  zm = jnp.zeros((cfg.n_layers, cfg.n_heads)).at[0, 1].set(1)
  zc = acts["z"][:, ::-1, -1]  # [L, b, H, d]
  patched_full, _ = run(cfg, params, ids, mask, intervene=Intervention(
    z_pos=jnp.full((3,), ids.shape[1] - 1), z_mask=zm, z_value=zc))
  patched, _, _ = decoder.jit_extend(cfg, params, ids[:, -1:], mask[:, -1:], cache,
                                     intervene=Intervention(z_mask=zm, z_value=zc))
  np.testing.assert_allclose(patched[:, 0], patched_full[:, -1], **TOL)
  assert np.abs(np.asarray(patched[:, 0] - last[:, 0])).max() > 1e-4


def test_atp_gradient_through_z_delta(setup):
  params, ids, mask = setup
  delta = jnp.zeros((CFG.n_layers, 3, CFG.n_heads, CFG.head_dim))
  pos = jnp.full((3,), ids.shape[1] - 1)
  metric = jax.jit(lambda dz: decoder.apply(CFG, params, ids, mask, intervene=Intervention(
    z_pos=pos, z_delta=dz))[0][:, -1, 5].sum())
  g = jax.jit(jax.grad(metric))(delta)
  step = jnp.zeros_like(delta).at[2, 0, 3, 0].set(1e-2)
  fd = (metric(step) - metric(-step)) / 2e-2
  np.testing.assert_allclose(g[2, 0, 3, 0], fd, rtol=1e-2, atol=1e-4)
  assert float(jnp.abs(g[0]).sum()) > 0


def test_public_helpers_rebuild_the_last_position(setup):
  params, ids, mask = setup
  logits, acts = run(CFG, params, ids, mask, capture=Capture(
    resid_mid=True, mlp_out=True, resid_final=True, at="last"))
  for layer in range(CFG.n_layers):
    np.testing.assert_allclose(decoder.mlp_block(CFG, params, layer, acts["resid_mid"][layer]),
                               acts["mlp_out"][layer], **TOL)
  np.testing.assert_allclose(decoder.final_logits(CFG, params, acts["resid_final"]),
                             logits[:, -1], **TOL)


def test_linen_module_declares_the_init_params_tree():
  ids, mask = batch()
  variables = jax.eval_shape(decoder.Decoder(GPT2).init, jax.random.key(0), ids, mask)
  shapes = jax.tree.map(lambda a: a.shape, variables["params"])
  direct = jax.tree.map(lambda a: a.shape,
                        jax.eval_shape(decoder.init_params, GPT2, jax.random.key(0)))
  assert shapes == direct
  want = decoder.param_shapes(GPT2)
  assert shapes["layers"] == want["layers"] and shapes["pos_embed"] == want["pos_embed"]
