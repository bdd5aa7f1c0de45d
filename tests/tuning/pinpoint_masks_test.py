"""Pinpoint tuning masks: frozen entries stay bit-identical under AdamW + weight decay."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab import tuning
from jaxlab.core.errors import ConfigError

L, D, H, d, F = 3, 8, 4, 2, 12


def _params(n_kv, key=0):
  """A hand-built stacked tree in the spec a.2 layout."""
  ks = jax.random.split(jax.random.key(key), 8)
  n = lambda k, s: jax.random.normal(k, s, jnp.float32)
  return {
    "embed": n(ks[0], (11, D)),
    "layers": {
      "attn": {"wq": n(ks[1], (L, D, H, d)), "wk": n(ks[2], (L, D, n_kv, d)),
               "wv": n(ks[3], (L, D, n_kv, d)), "wo": n(ks[4], (L, H, d, D))},
      "attn_norm": jnp.ones((L, D)),
      "mlp": {"w_gate": n(ks[5], (L, D, F)), "w_up": n(ks[6], (L, D, F)),
              "w_down": n(ks[7], (L, F, D))},
    },
    "final_norm": jnp.ones((D,)),
  }


def _train(params, tx, steps=5):
  state = tx.init(params)

  @jax.jit
  def step(p, s, k):
    g = jax.tree.map(lambda x: jax.random.normal(k, x.shape), p)  # dense fake grads
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s

  for i in range(steps):
    params, state = step(params, state, jax.random.key(i + 100))
  return params


@pytest.mark.parametrize("n_kv", [H, 2])
def test_frozen_entries_bit_identical_under_weight_decay(n_kv):
  p0 = _params(n_kv)
  heads = [(0, 1), (2, 3)]
  masks = tuning.head_masks(p0, heads, n_heads=H, n_kv_heads=n_kv)
  tx = tuning.masked_adamw(1e-2, masks, weight_decay=0.1)
  p1 = _train(p0, tx)
  a0, a1 = p0["layers"]["attn"], p1["layers"]["attn"]
  sel = np.zeros((L, H), bool)
  for l, h in heads:
    sel[l, h] = True
  wq0, wq1 = np.asarray(a0["wq"]), np.asarray(a1["wq"])
  wo0, wo1 = np.asarray(a0["wo"]), np.asarray(a1["wo"])
  for l in range(L):
    for h in range(H):
      same_q = np.array_equal(wq0[l, :, h], wq1[l, :, h])
      same_o = np.array_equal(wo0[l, h], wo1[l, h])
      assert same_q == (not sel[l, h]) and same_o == (not sel[l, h]), (l, h)
  # k/v: MHA trains the heads' own slices; GQA (policy auto = q/o) freezes all.
  wk0, wk1 = np.asarray(a0["wk"]), np.asarray(a1["wk"])
  for l in range(L):
    for g in range(n_kv):
      moved = not np.array_equal(wk0[l, :, g], wk1[l, :, g])
      assert moved == (n_kv == H and sel[l, g])
  for name in ("mlp", "attn_norm"):
    for x0, x1 in zip(jax.tree.leaves(p0["layers"][name]), jax.tree.leaves(p1["layers"][name])):
      assert np.array_equal(np.asarray(x0), np.asarray(x1))
  assert np.array_equal(np.asarray(p0["embed"]), np.asarray(p1["embed"]))


def test_decay_frozen_slices_reproduces_spt_shrink():
  p0 = _params(H)
  masks = tuning.head_masks(p0, [(1, 0)], n_heads=H)
  tx = tuning.masked_adamw(1e-2, masks, weight_decay=0.1, decay_frozen_slices=True)
  p1 = _train(p0, tx, steps=3)
  wq0, wq1 = np.asarray(p0["layers"]["attn"]["wq"]), np.asarray(p1["layers"]["attn"]["wq"])
  # Frozen slices of the re-enabled matrix shrink by exactly (1 - lr*wd)^3 ...
  np.testing.assert_allclose(wq1[0, :, 2], wq0[0, :, 2] * (1 - 1e-3) ** 3, rtol=1e-6)
  # ... but a leaf with no trainable entry (MLP) is untouched.
  assert np.array_equal(np.asarray(p0["layers"]["mlp"]["w_up"]),
                        np.asarray(p1["layers"]["mlp"]["w_up"]))


def test_gqa_group_mapping_and_train_kv():
  assert [tuning.kv_group(h, 9, 3) for h in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
  p0 = _params(2)
  masks = tuning.head_masks(p0, [(0, 3)], n_heads=H, n_kv_heads=2,
                            tuning=tuning.HeadTuning(policy="qkvo"))
  wk = np.broadcast_to(masks["layers"]["attn"]["wk"], (L, D, 2, d))
  assert wk[0, :, 1].all() and not wk[0, :, 0].any() and not wk[1:].any()


def test_levels_and_counts():
  p0 = _params(H)
  heads = [(0, 0)]
  count = lambda lvl, **kw: tuning.count_trainable(p0, tuning.head_masks(
    p0, heads, n_heads=H, tuning=tuning.HeadTuning(precise_level=lvl, **kw)))
  qo = D * d * 2
  assert count(3, policy="qo") == qo
  assert count(3) == qo + 2 * D * d  # MHA auto = q/k/v/o
  assert count(4, policy="qo") == D * d
  assert count(2, policy="qo") == qo + 3 * D * F
  assert count(3, policy="qo", mlp_layers=(2,)) == qo + 3 * D * F
  assert count(1, policy="qo") == qo + 3 * D * F + 11 * D
  assert count(0) == sum(x.size for x in jax.tree.leaves(p0))
  with pytest.raises(ConfigError):
    tuning.head_masks(p0, [(L, 0)], n_heads=H)


def test_random_heads_and_top_heads():
  a = tuning.random_heads(3, L, H, 5)
  assert a == tuning.random_heads(3, L, H, 5) and len(set(a)) == 5
  ex = tuning.random_heads(4, L, H, 4, exclude=a)
  assert not set(ex) & set(a)
  scores = np.zeros((L, H))
  scores[2, 1], scores[0, 3] = -5.0, -1.0
  assert tuning.top_heads(scores, 2) == [(2, 1), (0, 3)]


def test_lora_restricted_to_heads_only_moves_those_slices():
  p0 = _params(2)
  lora = tuning.lora_init(jax.random.key(0), p0, rank=2)
  lmask = tuning.lora_head_masks(lora, [(1, 2)], n_layers=L, n_heads=H, n_kv_heads=2)
  lora = tuning.restrict_lora(lora, lmask)
  tx = tuning.pinpoint(optax.adamw(1e-1, weight_decay=0.1), lmask)
  state = tx.init(lora)

  def loss(lp):
    merged = tuning.lora_merge(p0, lp)
    return sum(jnp.sum(jnp.sin(x)) for x in jax.tree.leaves(merged))

  for _ in range(3):
    u, state = tx.update(jax.grad(loss)(lora), state, lora)
    lora = optax.apply_updates(lora, u)
  merged = tuning.lora_merge(p0, lora)
  dq = np.abs(np.asarray(merged["layers"]["attn"]["wq"] - p0["layers"]["attn"]["wq"]))
  do = np.abs(np.asarray(merged["layers"]["attn"]["wo"] - p0["layers"]["attn"]["wo"]))
  assert dq[1, :, 2].max() > 0 and do[1, 2].max() > 0
  dq[1, :, 2] = 0
  do[1, 2] = 0
  assert dq.max() == 0 and do.max() == 0
  dk = np.asarray(merged["layers"]["attn"]["wk"] - p0["layers"]["attn"]["wk"])
  assert np.abs(dk).max() == 0  # GQA policy: no k/v
