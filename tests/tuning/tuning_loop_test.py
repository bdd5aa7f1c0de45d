"""The merged tuning loop against an independent reference, plus sweep/start_layer/resume.

The reference (``_reference_heads``) is written without ``jaxlab.tuning``: full-logit
cross-entropy by hand over ``decoder.apply``, a mask built by loops over the heads,
and AdamW with bias correction and decoupled decay written in numpy.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.core.errors import ConfigError, NonFiniteError
from jaxlab.core.metrics import read_jsonl
from jaxlab.data import BatchIterator
from jaxlab.interp.testing import tiny_model
from jaxlab.models import decoder
from jaxlab.tuning import loop

HEADS = ((2, 1), (3, 0))
LR, END, WD, STEPS, B = 1e-2, 1e-3, 0.1, 3, 4
TOL = {"rtol": 1e-5, "atol": 2e-5}  # vmap vs single lane: Adam amplifies float noise of ~0 grads


@pytest.fixture(scope="module")
def setup():
  cfg, params = tiny_model(gqa=True, layers=4)
  params = jax.device_get(params)
  rng = np.random.default_rng(0)
  ids = rng.integers(3, 40, (12, 10)).astype(np.int32)
  mask = np.ones_like(ids)
  mask[:3, :2] = 0  # left padding
  loss_mask = np.zeros(ids.shape, np.float32)
  loss_mask[:, -3:] = 1  # the last three tokens are targets
  return cfg, params, {"ids": ids, "mask": mask, "loss_mask": loss_mask}


def _ref_loss(cfg, params, batch):
  logits, _ = decoder.apply(cfg, params, batch["ids"], batch["mask"])
  logp = logits - jax.scipy.special.logsumexp(logits, -1, keepdims=True)
  tgt = batch["ids"][:, 1:]
  nll = -jnp.take_along_axis(logp[:, :-1], tgt[..., None], -1)[..., 0]
  w = batch["loss_mask"][:, 1:]
  return jnp.sum(nll * w) / jnp.sum(w)


def _reference_heads(cfg, params, data, seed):
  """Plain masked AdamW on the full parameter tree (GQA: q and o slices only)."""
  p = jax.tree.map(np.asarray, params)
  mask = jax.tree.map(np.zeros_like, p)
  for layer, head in HEADS:
    mask["layers"]["wq"][layer, :, head, :] = 1.0
    mask["layers"]["wo"][layer, head, :, :] = 1.0
  m = jax.tree.map(np.zeros_like, p)
  v = jax.tree.map(np.zeros_like, p)
  it = BatchIterator({k: data[k] for k in ("ids", "mask", "loss_mask")}, B, seed=seed)
  grad = jax.jit(jax.grad(lambda q, b: _ref_loss(cfg, q, b)))
  for i in range(STEPS):
    g = jax.tree.map(np.asarray, grad(p, next(it)))
    lr = LR + (END - LR) * i / STEPS
    t = i + 1

    def upd(p_, g_, m_, v_, k_):
      g_ = g_ * k_
      m_[...] = 0.9 * m_ + 0.1 * g_
      v_[...] = 0.999 * v_ + 0.001 * g_ * g_
      u = (m_ / (1 - 0.9 ** t)) / (np.sqrt(v_ / (1 - 0.999 ** t)) + 1e-8) + WD * p_
      return p_ - lr * u * k_

    p = jax.tree.map(upd, p, g, m, v, mask)
  return p, mask


def test_masked_update_equals_independent_reference(setup):
  cfg, params, data = setup
  tc = loop.TrainConfig(steps=STEPS, batch_size=B, end_lr=END, weight_decay=WD, target_len=4)
  tuned, info = loop.train(cfg, params, loop.Arm(name="h", heads=HEADS), data, lr=LR, seed=0,
                           tc=tc)
  ref, mask = _reference_heads(cfg, params, data, seed=0)
  assert info["start_layer"] == 2
  assert info["trainable"] == 2 * 2 * cfg.d_model * cfg.head_dim
  for path, t, r, k, p0 in zip(jax.tree_util.tree_leaves_with_path(tuned),
                                jax.tree.leaves(tuned), jax.tree.leaves(ref),
                                jax.tree.leaves(mask), jax.tree.leaves(params)):
    t, r, p0 = np.asarray(t), np.asarray(r), np.asarray(p0)
    np.testing.assert_allclose(t, r, rtol=2e-4, atol=2e-6, err_msg=str(path[0]))
    np.testing.assert_array_equal(t[k == 0], p0[k == 0])  # frozen entries bit-identical
    if k.any():
      assert np.abs(t - p0)[k == 1].max() > 1e-3  # the selected slices really moved


def test_vmapped_lanes_equal_separate_runs_and_start_layer_is_exact(setup):
  cfg, params, data = setup
  tc = loop.TrainConfig(steps=2, batch_size=B, weight_decay=WD, target_len=4)
  rnd = ((0, 3), (3, 2))
  arm = loop.Arm(name="h", heads=HEADS)
  res = loop.sweep(cfg, params, arm, data,
                   [loop.Lane(1e-2, 0), loop.Lane(3e-2, 1, heads=rnd)], tc)
  assert res.start_layer == 0  # the random lane reaches layer 0
  one, _ = loop.train(cfg, params, loop.Arm(name="r", heads=rnd), data, lr=3e-2, seed=1, tc=tc)
  sep, info = loop.train(cfg, params, arm, data, lr=1e-2, seed=0, tc=tc)
  assert info["start_layer"] == 2
  full_fwd, _ = loop.train(cfg, params, arm, data, lr=1e-2, seed=0,
                           tc=loop.TrainConfig(steps=2, batch_size=B, weight_decay=WD,
                                               target_len=4, start_layer=0))
  for a, b, c, d in zip(jax.tree.leaves(res.params_of(1)), jax.tree.leaves(one),
                        jax.tree.leaves(sep), jax.tree.leaves(full_fwd)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), **TOL)
    np.testing.assert_allclose(np.asarray(c), np.asarray(d), **TOL)
  for a, c in zip(jax.tree.leaves(res.params_of(0)), jax.tree.leaves(sep)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(c), **TOL)


def test_full_and_lora_arms(setup):
  cfg, params, data = setup
  tc = loop.TrainConfig(steps=2, batch_size=B, target_len=4)
  full = loop.sweep(cfg, params, loop.Arm(name="f", kind="full"), data, [loop.Lane(1e-3)], tc)
  assert full.trainable == sum(x.size for x in jax.tree.leaves(params))
  assert not np.array_equal(full.params_of(0)["layers"]["w_up"], params["layers"]["w_up"])
  lora = loop.sweep(cfg, params, loop.Arm(name="l", kind="lora", lora_rank=2), data,
                    [loop.Lane(1e-2)], tc)
  lp = lora.params_of(0)
  np.testing.assert_array_equal(lp["layers"]["w_up"], params["layers"]["w_up"])
  assert not np.array_equal(lp["layers"]["wq"], params["layers"]["wq"])
  lh = loop.sweep(cfg, params, loop.Arm(name="lh", kind="lora", lora_rank=2, heads=HEADS),
                  data, [loop.Lane(1e-2)], tc)
  moved = np.any(np.asarray(lh.params_of(0)["layers"]["wq"]) != params["layers"]["wq"],
                 axis=(1, 3))
  expect = np.zeros((cfg.n_layers, cfg.n_heads), bool)
  for layer, head in HEADS:
    expect[layer, head] = True
  np.testing.assert_array_equal(moved, expect)
  assert lh.start_layer == 2 and 0 < lh.trainable < lora.trainable


def test_resume_equals_uninterrupted(setup, tmp_path, monkeypatch):
  cfg, params, data = setup
  tc = loop.TrainConfig(steps=4, batch_size=B, target_len=4, ckpt_every=2)
  arm = loop.Arm(name="h", heads=HEADS)
  lanes = [loop.Lane(1e-2, 0), loop.Lane(2e-2, 1)]
  whole = loop.sweep(cfg, params, arm, data, lanes, tc, out_dir=tmp_path / "a")
  calls = {"n": 0}
  orig = loop._Batches.__next__

  def crash(self):
    calls["n"] += 1
    if calls["n"] == 4:
      raise KeyboardInterrupt  # killed during step 4, after the step-2 checkpoint
    return orig(self)

  monkeypatch.setattr(loop._Batches, "__next__", crash)
  with pytest.raises(KeyboardInterrupt):
    loop.sweep(cfg, params, arm, data, lanes, tc, out_dir=tmp_path / "b")
  monkeypatch.setattr(loop._Batches, "__next__", orig)
  resumed = loop.sweep(cfg, params, arm, data, lanes, tc, out_dir=tmp_path / "b")
  assert np.isfinite(resumed.losses).all()  # steps 1-2 came back from the checkpoint
  np.testing.assert_array_equal(resumed.losses, whole.losses)
  for a, b in zip(jax.tree.leaves(resumed.state), jax.tree.leaves(whole.state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # params, Adam moments, step
  rows = lambda d: read_jsonl(tmp_path / d / "metrics.jsonl")  # noqa: E731
  assert rows("b") == rows("a")  # one line per step, no duplicates from the crashed run
  assert rows("a")[0].keys() == {"step", "loss_lane0", "loss_lane1"}
  assert rows("a")[-1]["loss_lane1"] == whole.losses[1, -1]


def test_nan_lane_names_its_lr_and_nothing_is_written(setup, tmp_path, monkeypatch):
  cfg, params, data = setup
  monkeypatch.chdir(tmp_path)
  tc = loop.TrainConfig(steps=4, batch_size=B, target_len=4)
  lanes = [loop.Lane(1e-2, 0), loop.Lane(1e30, 1)]  # Adam steps ~lr: lane 1 overflows
  msg = r"arm h: (loss|parameters) became NaN/inf at step \d for lr=1e\+30; lower that learning rate"
  with pytest.raises(NonFiniteError, match=msg) as e:
    loop.sweep(cfg, params, loop.Arm(name="h", heads=HEADS), data, lanes, tc)
  assert "lr=0.01" not in str(e.value)
  assert not list(tmp_path.iterdir())  # out_dir=None: no metrics file, no checkpoints


def test_chunked_sweep_equals_one_program_and_a_rerun_neither_trains_nor_evaluates(
    setup, tmp_path):
  cfg, params, data = setup
  tc = loop.TrainConfig(steps=2, batch_size=B, weight_decay=WD, target_len=4, ckpt_every=1)
  arm = loop.Arm(name="h", heads=HEADS)
  lanes = [loop.Lane(1e-2, 0), loop.Lane(3e-2, 0), loop.Lane(1e-2, 1)]
  whole = loop.sweep(cfg, params, arm, data, lanes, tc)
  evals = []

  def evaluate(p):   # a number that depends on every tuned head slice
    evals.append(1)
    return {"wq": float(np.asarray(p["layers"]["wq"], np.float64).sum())}

  run = lambda: loop.sweep_chunked(cfg, params, arm, data, lanes, tc, evaluate=evaluate,  # noqa
                                   lane_chunk=2, out_dir=tmp_path, keep=lambda i, ln: i != 1)
  got = run()
  assert len(evals) == 3 and sorted(got.kept) == [0, 2]
  assert sorted(p.name[:2] for p in tmp_path.iterdir()) == ["0-", "1-"]   # 2 + 1 lanes
  np.testing.assert_allclose(got.losses, whole.losses, **TOL)
  for i in (0, 2):
    for a, b in zip(jax.tree.leaves(got.kept[i]), jax.tree.leaves(whole.params_of(i))):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), **TOL)
  want = [float(np.asarray(whole.params_of(i)["layers"]["wq"], np.float64).sum())
          for i in range(3)]
  np.testing.assert_allclose([r["wq"] for r in got.rows], want, rtol=1e-6)
  again = run()                     # everything restored: no evaluation, same rows and losses
  assert len(evals) == 3 and again.rows == got.rows
  np.testing.assert_array_equal(again.losses, got.losses)


def test_chunk_dir_changes_with_the_lanes_and_settings(tmp_path):
  """A changed lr grid, step count or head set never restores the old lanes' checkpoints."""
  tc = loop.TrainConfig(steps=4, batch_size=4, target_len=8, ckpt_every=2)
  a = loop.chunk_dir(tmp_path, 0, [loop.Lane(1e-3, 0)], tc)
  b = loop.chunk_dir(tmp_path, 0, [loop.Lane(3e-3, 0)], tc)
  c = loop.chunk_dir(tmp_path, 0, [loop.Lane(1e-3, 0)], dataclasses.replace(tc, steps=8))
  d = loop.chunk_dir(tmp_path, 0, [loop.Lane(1e-3, 0, ((14, 1),))], tc)
  e = loop.chunk_dir(tmp_path, 0, [loop.Lane(1e-3, 0)],
                     dataclasses.replace(tc, compute_dtype="bfloat16"))
  assert len({a, b, c, d, e}) == 5 and a == loop.chunk_dir(tmp_path, 0, [loop.Lane(1e-3, 0)], tc)
  assert a.name == "0-cfb413a1"  # fp32 folders kept their names when compute_dtype came in


def test_bf16_step_tracks_fp32_and_returns_fp32_params(setup):
  """Mixed precision: the same lane in bf16 compute follows the fp32 losses and gives back
  fp32 parameters that moved. (Per-weight updates are not compared: Adam normalises the
  tiny model's near-zero gradients, so bf16 rounding flips many of their signs.)"""
  cfg, params, data = setup
  arm = loop.Arm(name="h", heads=HEADS)
  lanes = [loop.Lane(LR, 0)]
  tc = loop.TrainConfig(steps=STEPS, batch_size=B, end_lr=END, weight_decay=WD, target_len=3)
  r32 = loop.sweep(cfg, params, arm, data, lanes, tc)
  r16 = loop.sweep(cfg, params, arm, data, lanes, dataclasses.replace(tc,
                                                                      compute_dtype="bfloat16"))
  np.testing.assert_allclose(r16.losses, r32.losses, rtol=2e-2)
  assert not np.array_equal(r16.losses, r32.losses)  # really computed in bf16
  p16, p32 = r16.params_of(0), r32.params_of(0)
  wq16, wq32, wq0 = (np.asarray(p["layers"]["wq"][2, :, 1]) for p in (p16, p32, params))
  assert p16["layers"]["wq"].dtype == jnp.float32
  step16, step32 = np.abs(wq16 - wq0).mean(), np.abs(wq32 - wq0).mean()
  assert 0.5 < step16 / step32 < 2.0
  with pytest.raises(ConfigError, match="compute_dtype"):
    loop.TrainConfig(compute_dtype="float16")


def test_sweep_then_seeds_trains_seed0_per_lr_then_seeds_at_the_chosen_lr(setup, tmp_path):
  """Stage 1 = seed 0 of every lr; stage 2 = the other seeds of the lr with the best score.

  Checked against separate single-lane sweeps (no chunking, no protocol) of the same lanes,
  and the score picks the *second* lr so "best" cannot pass by being the first lane.
  """
  cfg, params, data = setup
  tc = loop.TrainConfig(steps=2, batch_size=B, weight_decay=WD, target_len=4, ckpt_every=1)
  arm = loop.Arm(name="h", heads=HEADS)
  grid = [loop.Lane(lr, s) for lr in (1e-2, 3e-2) for s in range(3)]
  evals = []

  def evaluate(p):
    evals.append(1)
    return {"wq": float(np.asarray(p["layers"]["wq"], np.float64).sum())}

  ref = {ln: loop.sweep(cfg, params, arm, data, [ln], tc) for ln in
         (loop.Lane(1e-2, 0), loop.Lane(3e-2, 0))}
  wq0 = {ln.lr: float(np.asarray(r.params_of(0)["layers"]["wq"], np.float64).sum())
         for ln, r in ref.items()}
  want_lr = 3e-2
  score = lambda r: -abs(r["wq"] - wq0[want_lr])   # noqa: E731 (closest to lr 3e-2's row)
  run = lambda: loop.sweep_then_seeds(cfg, params, arm, data, grid, tc, score=score,  # noqa
                                      evaluate=evaluate, lane_chunk=1, out_dir=tmp_path,
                                      keep=lambda i, ln: ln.seed == 0)
  lanes, got, best = run()
  assert best == want_lr
  assert lanes == [loop.Lane(1e-2, 0), loop.Lane(3e-2, 0), loop.Lane(3e-2, 1),
                   loop.Lane(3e-2, 2)]
  assert len(evals) == 4 and sorted(got.kept) == [0, 1]
  for ln in (loop.Lane(3e-2, 1), loop.Lane(3e-2, 2)):
    ref[ln] = loop.sweep(cfg, params, arm, data, [ln], tc)
  for i, ln in enumerate(lanes):
    np.testing.assert_allclose(got.losses[i], ref[ln].losses[0], **TOL)
    want = float(np.asarray(ref[ln].params_of(0)["layers"]["wq"], np.float64).sum())
    np.testing.assert_allclose(got.rows[i]["wq"], want, rtol=1e-6)
  # stage 1 has the one-seed grid's folders, stage 2 its own
  assert sorted(p.name[:2] for p in tmp_path.iterdir()) == ["0-", "1-", "se"]
  assert sorted(p.name[:2] for p in (tmp_path / "seeds").iterdir()) == ["0-", "1-"]
  assert loop.chunk_dir(tmp_path, 1, [loop.Lane(3e-2, 0)], tc).exists()
  again = run()                     # a rerun restores both stages: no evaluation
  assert len(evals) == 4 and again[1].rows == got.rows and again[0] == lanes
