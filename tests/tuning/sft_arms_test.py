"""SFT arms on the real decoder tree: pinpoint freezes exactly, LoRA merges, counts."""

import jax
import numpy as np

from jaxlab import tuning
from jaxlab.interp.testing import tiny_model


def _data(n=8, t=6, seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(3, 40, (n, t)).astype(np.int32)
  mask = np.ones((n, t), np.int32)
  loss_mask = np.zeros((n, t), np.int32)
  loss_mask[:, -2] = 1
  return {"ids": ids, "mask": mask, "loss_mask": loss_mask}


def test_pinpoint_arm_on_decoder_params_freezes_everything_else():
  cfg, params = tiny_model(gqa=True)
  heads = [(0, 3), (2, 1)]
  m = tuning.head_masks(params, heads, n_heads=cfg.n_heads, n_kv_heads=cfg.kv_heads)
  assert np.asarray(m["layers"]["wq"]).shape == (3, 1, 4, 1)
  assert tuning.count_trainable(params, m) == 2 * 2 * cfg.d_model * cfg.head_dim
  arm = tuning.Arm(name="heads", masks=m)
  tuned, hist = tuning.finetune(cfg, params, _data(), arm, steps=3, batch_size=4, lr=1e-2,
                                weight_decay=0.1)
  assert len(hist) == 3 and np.isfinite(hist).all()
  moved = jax.tree.map(lambda a, b: ~np.equal(np.asarray(a), np.asarray(b)), params, tuned)
  allowed = jax.tree.map(lambda x, mk: np.broadcast_to(np.asarray(mk), x.shape), params, m)
  for mv, ok in zip(jax.tree.leaves(moved), jax.tree.leaves(allowed)):
    assert not (mv & ~ok).any()  # nothing outside the mask moved, bit for bit
  assert np.asarray(moved["layers"]["wq"])[0, :, 3].any()
  assert np.asarray(moved["layers"]["wo"])[2, 1].any()


def test_lora_arm_changes_only_attention_and_full_arm_changes_all():
  cfg, params = tiny_model()
  tuned, _ = tuning.finetune(cfg, params, _data(), tuning.Arm(name="lora", kind="lora",
                                                               lora_rank=2),
                             steps=2, batch_size=4, lr=1e-2)
  assert np.array_equal(np.asarray(tuned["layers"]["w_up"]), np.asarray(params["layers"]["w_up"]))
  assert not np.array_equal(np.asarray(tuned["layers"]["wq"]), np.asarray(params["layers"]["wq"]))
  full = tuning.sft.trainable_count(params, tuning.Arm(name="f", kind="full"))
  assert full == sum(x.size for x in jax.tree.leaves(params))
