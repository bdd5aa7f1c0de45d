"""Decoder on (data, model) meshes of 8 fake CPU devices == one device (float32).

One rules table (decoder_sharding) places parameters, activations and the KV cache; forward,
greedy generation, one pinpoint-tuning step and the fast path-patching map must equal the
single-device results, and every array's sharding must be what the rules say.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxlab import tuning
from jaxlab.core.sharding import make_mesh
from jaxlab.core.state import TrainState
from jaxlab.interp import fast, metrics
from jaxlab.interp.patching import Pair
from jaxlab.models import decoder, decoder_mesh
from jaxlab.models.generate import generate

# 8 query heads, 4 KV heads: on model=4 KV heads shard, on model=8 they are replicated.
CFG = decoder.DecoderConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=8, n_kv_heads=4,
                            d_ff=64, rope_theta=100.0, max_positions=32, eos_ids=(5,))
MESHES = [{"data": 2, "model": 4}, {"data": 1, "model": 8}]
M = "model"


def _params(seed=0):
  p = decoder.init_params(CFG, jax.random.key(seed))
  return jax.tree.map(lambda x: x * (8.0 if x.ndim >= 3 else 1.0), p)  # heads matter


def _batch(b=4, t=8, seed=3):
  rng = np.random.default_rng(seed)
  ids = rng.integers(6, 64, (b, t)).astype(np.int32)
  mask = np.ones((b, t), np.int32)
  for row, pad in enumerate((0, 3, 1, 5)[:b]):
    mask[row, :pad], ids[row, :pad] = 0, 0
  return ids, mask


def _expected_specs(model_size):
  kv = M if CFG.kv_heads % model_size == 0 else None
  return {"embed": P(M, None), "final_norm_scale": P(None),
          "layers": {"attn_norm_scale": P(None, None), "mlp_norm_scale": P(None, None),
                     "wq": P(None, None, M, None), "wk": P(None, None, kv, None),
                     "wv": P(None, None, kv, None), "wo": P(None, M, None, None),
                     "w_gate": P(None, None, M), "w_up": P(None, None, M),
                     "w_down": P(None, M, None)}}


def _same(arr, mesh, spec):
  return arr.sharding.is_equivalent_to(NamedSharding(mesh, spec), arr.ndim)


def _assert_specs(tree, expected, mesh):
  flat_t = jax.tree_util.tree_flatten_with_path(tree)[0]
  flat_e = dict(jax.tree_util.tree_flatten_with_path(
    expected, is_leaf=lambda x: isinstance(x, P))[0])
  assert len(flat_t) == len(flat_e)
  for path, arr in flat_t:
    assert _same(arr, mesh, flat_e[path]), (jax.tree_util.keystr(path), arr.sharding.spec)


@pytest.mark.parametrize("shape", MESHES, ids=["d2m4", "d1m8"])
def test_param_shardings_are_the_rules_and_split_bytes(shape):
  mesh = make_mesh(shape)
  params = _params()
  sp = decoder_mesh.shard_params(CFG, params, mesh)
  _assert_specs(sp, _expected_specs(shape["model"]), mesh)
  wq = sp["layers"]["wq"]
  for s in wq.addressable_shards:  # each device holds 1/model of the heads
    assert s.data.shape == (2, 32, 8 // shape["model"], 4)
  per_dev = decoder_mesh.bytes_per_device(sp)
  full = sum(x.nbytes for x in jax.tree.leaves(params))
  assert len(per_dev) == 8 and max(per_dev.values()) < 0.5 * full


@pytest.mark.parametrize("shape", MESHES, ids=["d2m4", "d1m8"])
def test_forward_and_cache_match_one_device(shape):
  mesh = make_mesh(shape)
  params, (ids, mask) = _params(), _batch()
  ref, _ = decoder.jit_apply(CFG, params, jnp.asarray(ids), jnp.asarray(mask))
  sp = decoder_mesh.shard_params(CFG, params, mesh)
  sids, smask = decoder_mesh.shard_batch(mesh, ids, mask)
  with jax.set_mesh(mesh):
    got, _ = decoder.jit_apply(CFG, sp, sids, smask)
    _, _, cache = decoder.jit_prefill(CFG, sp, sids, smask, 12)
  np.testing.assert_allclose(np.asarray(got), np.asarray(ref), atol=1e-5, rtol=1e-5)
  assert _same(got, mesh, P("data" if shape["data"] > 1 else None, None, M))
  want = decoder_mesh.cache_shardings(CFG, mesh, 4, 12)
  assert cache.k.sharding.is_equivalent_to(want.k, 5)
  kv = M if CFG.kv_heads % shape["model"] == 0 else None
  assert want.k.spec == P(None, "data" if shape["data"] > 1 else None, None, kv, None)


@pytest.mark.parametrize("shape", MESHES, ids=["d2m4", "d1m8"])
def test_greedy_generation_identical_with_padded_batch(shape):
  mesh = make_mesh(shape)
  params, (ids, mask) = _params(1), _batch()
  ref = generate(CFG, params, ids, mask, max_new_tokens=6, stop_ids=())
  sp = decoder_mesh.shard_params(CFG, params, mesh)
  sids, smask = decoder_mesh.shard_batch(mesh, ids, mask)
  with jax.set_mesh(mesh):
    got = generate(CFG, sp, sids, smask, max_new_tokens=6, stop_ids=())
  np.testing.assert_array_equal(np.asarray(got.tokens), np.asarray(ref.tokens))
  assert len(np.unique(np.asarray(ref.tokens))) > 3  # not a degenerate constant output


def _tune_step(params, data, masks, mesh=None):
  tx = tuning.pinpoint(optax.adamw(1e-2, weight_decay=0.1), masks)
  step = tuning.sft.make_step(CFG, tx)
  state = TrainState.create(jax.tree.map(jnp.copy, params), tx)
  if mesh is None:
    return step(state, data, jax.random.key(0))[0].params
  with jax.set_mesh(mesh):
    return step(state, data, jax.random.key(0))[0].params


@pytest.mark.parametrize("shape", MESHES, ids=["d2m4", "d1m8"])
def test_pinpoint_tuning_step_matches_and_frozen_slices_stay(shape):
  mesh = make_mesh(shape)
  params, (ids, mask) = _params(2), _batch()
  loss_mask = mask.copy()
  masks = tuning.head_masks(params, [(0, 1), (1, 6)], n_heads=CFG.n_heads,
                            n_kv_heads=CFG.kv_heads)
  data = {"ids": jnp.asarray(ids), "mask": jnp.asarray(mask), "loss_mask": jnp.asarray(loss_mask)}
  ref = _tune_step(params, data, masks)
  sp = decoder_mesh.shard_params(CFG, params, mesh)
  sdata = dict(zip(data, decoder_mesh.shard_batch(mesh, ids, mask, loss_mask)))
  got = _tune_step(sp, sdata, masks, mesh)
  _assert_specs(got, _expected_specs(shape["model"]), mesh)
  for a, b, p0, m in zip(jax.tree.leaves(got), jax.tree.leaves(ref), jax.tree.leaves(params),
                         jax.tree.leaves(masks)):
    a, b, p0 = np.asarray(a), np.asarray(b), np.asarray(p0)
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5)
    frozen = ~np.broadcast_to(np.asarray(m), a.shape)
    np.testing.assert_array_equal(a[frozen], p0[frozen])  # bit-identical frozen entries
  assert not np.array_equal(np.asarray(got["layers"]["wq"])[1, :, 6],
                            np.asarray(params["layers"]["wq"])[1, :, 6])


@pytest.mark.parametrize("shape", MESHES, ids=["d2m4", "d1m8"])
def test_fast_path_patching_map_matches(shape):
  mesh = make_mesh(shape)
  params = _params(3)
  ids, mask = _batch()
  ids_c = ids.copy()
  ids_c[:, -3] = (ids[:, -3] + 7) % 58 + 6
  pair = Pair.make(ids, mask, ids_c, mask)
  metric = metrics.logit_diff(jnp.arange(10, 14), jnp.arange(20, 26))
  ref = fast.path_patch_fast(CFG, params, pair, metric, mlps=True)
  sp = decoder_mesh.shard_params(CFG, params, mesh)
  spair = Pair(*decoder_mesh.shard_batch(mesh, *pair))
  with jax.set_mesh(mesh):
    got = fast.path_patch_fast(CFG, sp, spair, metric, mlps=True)
  scale = float(jnp.abs(ref.heads).max())
  assert float(jnp.abs(ref.heads - ref.m_ref[None, None]).max()) > 1e-3 * scale
  np.testing.assert_allclose(np.asarray(got.heads), np.asarray(ref.heads), atol=1e-5 * scale,
                             rtol=1e-5)
  np.testing.assert_allclose(np.asarray(got.mlps), np.asarray(ref.mlps), atol=1e-5 * scale,
                             rtol=1e-5)
