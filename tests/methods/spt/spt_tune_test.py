"""SPT arms through the merged loop change only the selected heads' slices (tiny GQA decoder)."""

import jax
import numpy as np
import pytest

from jaxlab.methods.spt import pipeline
from jaxlab.tuning import loop
from jaxlab.models import decoder

HEADS = [(1, 2), (3, 5)]


@pytest.fixture(scope="module")
def setup():
  cfg = decoder.tiny_llama(gqa=True)
  params = jax.device_get(decoder.init_params(cfg, jax.random.key(0)))
  rng = np.random.default_rng(0)
  ids = rng.integers(3, cfg.vocab_size, (8, 16)).astype(np.int32)
  mask = np.ones_like(ids)
  mask[:2, :3] = 0  # left padding on two rows
  loss_mask = np.zeros(ids.shape, np.float32)
  loss_mask[:, -6:] = 1
  return cfg, params, {"ids": ids, "mask": mask, "loss_mask": loss_mask}


def _train(setup, arm):
  cfg, params, data = setup
  sc = pipeline.StudyConfig(n_seeds=1, lr_spt=(1e-2,), weight_decay=0.1)
  spec, lanes = pipeline._arm_lanes(sc, arm, cfg, HEADS)
  tc = loop.TrainConfig(steps=2, batch_size=4, weight_decay=0.1, target_len=8)
  res = loop.sweep(cfg, params, spec, data, lanes, tc)
  info = {"trainable": res.trainable, "final_loss": float(res.losses[0, -1])}
  return params, jax.device_get(res.params_of(0)), info


def _selected(shape_lh):
  sel = np.zeros(shape_lh, bool)
  for layer, head in HEADS:
    sel[layer, head] = True
  return sel


def test_spt_changes_only_selected_slices(setup):
  params, new, info = _train(setup, "spt")
  sel = _selected((4, 8))
  lay = params["layers"]
  diff_q = np.any(new["layers"]["wq"] != lay["wq"], axis=(1, 3))  # [L, H]
  diff_o = np.any(new["layers"]["wo"] != lay["wo"], axis=(2, 3))  # [L, H]
  np.testing.assert_array_equal(diff_q, sel)
  np.testing.assert_array_equal(diff_o, sel)
  for name in ("wk", "wv", "w_gate", "w_up", "w_down", "attn_norm_scale", "mlp_norm_scale"):
    np.testing.assert_array_equal(new["layers"][name], lay[name], err_msg=name)
  np.testing.assert_array_equal(new["embed"], params["embed"])
  np.testing.assert_array_equal(new["final_norm_scale"], params["final_norm_scale"])
  # q + o slices of 2 heads (GQA policy: no k/v): 2 * (D*d + d*D).
  assert info["trainable"] == 2 * 2 * 128 * 16
  assert np.isfinite(info["final_loss"])


def test_lora_heads_delta_only_in_selected_slices(setup):
  params, new, info = _train(setup, "lora_heads")
  sel = _selected((4, 8))
  lay = params["layers"]
  diff_q = np.any(new["layers"]["wq"] != lay["wq"], axis=(1, 3))
  diff_o = np.any(new["layers"]["wo"] != lay["wo"], axis=(2, 3))
  assert not (diff_q & ~sel).any() and not (diff_o & ~sel).any()
  assert diff_q[sel].all() and diff_o[sel].all()
  np.testing.assert_array_equal(new["layers"]["wk"], lay["wk"])
  assert 0 < info["trainable"]


def test_first_seed_picks_the_same_lanes_a_longer_study_trains():
  """``first_seed=2, n_seeds=1`` is seed 2 of a 3-seed study: same lr, seed and head set."""
  cfg = decoder.DecoderConfig(vocab_size=32, d_model=16, n_layers=6, n_heads=4, n_kv_heads=2,
                              d_ff=32)
  heads = [(4, 1), (5, 0)]
  for arm in ("spt", "random", "full", "lora"):
    full = pipeline._arm_lanes(pipeline.StudyConfig(n_seeds=3), arm, cfg, heads)[1]
    one = pipeline._arm_lanes(pipeline.StudyConfig(n_seeds=1, first_seed=2), arm, cfg, heads)[1]
    assert one == [ln for ln in full if ln.seed == 2] and one
  rnd = pipeline._arm_lanes(pipeline.StudyConfig(n_seeds=3), "random", cfg, heads)[1]
  assert len({ln.heads for ln in rnd}) == 3       # one head set per seed, not shared
