"""The pure step: sharded equals single-device, compiles once, NaN guard."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab.core import axes, sharding, train
from jaxlab.core.checkpoint import Checkpointer
from jaxlab.core.errors import NonFiniteError
from jaxlab.core.metrics import read_jsonl
from jaxlab.core.state import TrainState
from jaxlab.data import BatchIterator
from jaxlab.models import MLP

MODEL = MLP(hidden=(16,), num_classes=3)


def _loss(params, model_state, batch, key):
  logits = MODEL.apply({"params": params}, batch["x"])
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
  return loss, (model_state, {})


def _setup(lr=0.1):
  tx = optax.sgd(lr)
  params = MODEL.init(jax.random.key(0), jnp.zeros((1, 5)))["params"]
  return tx, TrainState.create(params, tx)


def _batch(i):
  r = np.random.default_rng(i)
  return {"x": r.normal(size=(32, 5)).astype(np.float32), "y": r.integers(0, 3, 32)}


def test_data_parallel_over_8_devices_equals_single_device():
  assert jax.device_count() == 8
  tx, s1 = _setup()
  step = train.make_step(_loss, tx)
  single = jax.jit(step)
  mesh = sharding.make_mesh({axes.DATA: -1})
  repl = sharding.replicated(mesh)
  _, s8 = _setup()
  s8 = jax.device_put(s8, repl)
  state_sh = jax.tree.map(lambda _: repl, s8)
  batch_sh = {"x": sharding.named(mesh, axes.DATA), "y": sharding.named(mesh, axes.DATA)}
  sharded = train.jit_step(step, state_sh, batch_sh)
  key = jax.random.key(1)
  for i in range(3):
    s1, m1 = single(s1, _batch(i), key)
    s8, m8 = sharded(s8, sharding.shard_batch(_batch(i), mesh), key)
    np.testing.assert_allclose(m1["loss"], m8["loss"], rtol=1e-5)
  chex.assert_trees_all_close(s1.params, s8.params, rtol=1e-5, atol=1e-6)
  assert len(s8.params["head"]["kernel"].sharding.device_set) == 8
  # the state keeps its sharding across steps (no silent resharding)
  before = jax.tree.map(lambda x: x.sharding, s8)
  s8, _ = sharded(s8, sharding.shard_batch(_batch(9), mesh), key)
  assert jax.tree.map(lambda x: x.sharding, s8) == before


def test_step_compiles_once():
  tx, state = _setup()
  step = jax.jit(chex.assert_max_traces(train.make_step(_loss, tx), n=1), donate_argnums=0)
  key = jax.random.key(0)
  for i in range(4):
    state, _ = step(state, _batch(i), key)
  assert int(state.step) == 4


def test_fit_stops_on_nan_and_keeps_last_good_checkpoint(tmp_path):
  tx, state = _setup(lr=0.1)
  good = train.jit_step(train.make_step(_loss, tx))
  poison = {"x": np.full((32, 5), np.nan, np.float32), "y": np.zeros(32, np.int64)}

  class Batches(BatchIterator):
    def __next__(self):
      b = super().__next__()
      return poison if self.epoch >= 2 else b

  arrays = {k: np.concatenate([_batch(i)[k] for i in range(2)]) for k in ("x", "y")}
  ck = Checkpointer(tmp_path / "ck")
  with pytest.raises(NonFiniteError, match=r"NaN/inf.*last good checkpoint \(step 4\)"):
    train.fit(step_fn=good, state=state, batches=Batches(arrays, 32, seed=0),
              key=jax.random.key(0), num_steps=12, out_dir=tmp_path, log_every=1,
              ckpt_every=2, checkpointer=ck)
  assert ck.latest_step() == 4
  restored, _ = ck.restore(_setup()[1])
  assert bool(train.all_finite(restored.params))


def _lane_step(state, batch, key):
  """Two vmapped lanes of least squares, each with its own lr (a sweep's shape)."""
  del key

  def one(s, b):
    loss_fn = lambda w: jnp.mean((b["x"] @ w - b["y"]) ** 2)  # noqa: E731
    loss, g = jax.value_and_grad(loss_fn)(s.params["w"])
    return s.replace(step=s.step + 1, params={"w": s.params["w"] - s.hparams["lr"] * g}), loss

  state, loss = jax.vmap(one)(state, batch)
  return state, {"loss": loss}


class _LaneBatches:
  """Two seeded iterators stacked into ``[2, b, ...]`` batches; ``crash_at`` interrupts."""

  def __init__(self, crash_at=None):
    r = np.random.default_rng(0)
    x = r.normal(size=(16, 3)).astype(np.float32)
    arrays = {"x": x, "y": x @ np.array([1.0, -2.0, 0.5], np.float32)}
    self.its = [BatchIterator(arrays, 4, seed=s) for s in (0, 1)]
    self.n, self.crash_at = 0, crash_at

  def __next__(self):
    self.n += 1
    if self.n == self.crash_at:
      raise KeyboardInterrupt
    rows = [next(it) for it in self.its]
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}

  def state(self):
    return [it.state() for it in self.its]

  def restore(self, states):
    for it, st in zip(self.its, states):
      it.restore(st)


def _lane_fit(out_dir, batches, lrs=(0.05, 0.1), **kw):
  tx = optax.identity()
  lanes = [TrainState.create({"w": jnp.zeros(3)}, tx, hparams={"lr": lr}) for lr in lrs]
  state = jax.tree.map(lambda *xs: jnp.stack(xs), *lanes)
  losses = np.full((2, 6), np.nan)

  def record(step, metrics):
    losses[:, step - 1] = np.asarray(metrics["loss"])

  def restore(extra):
    losses[:, : extra["step"]] = np.asarray(extra["losses"])[:, : extra["step"]]

  ck = Checkpointer(out_dir / "ck") if out_dir is not None else None
  state = train.fit(step_fn=jax.jit(_lane_step), state=state, batches=batches,
                    key=jax.random.key(0), num_steps=6, out_dir=out_dir, log_every=1,
                    ckpt_every=2 if ck else 0, checkpointer=ck, on_step=record,
                    on_restore=restore, extra_fn=lambda: {"losses": losses.tolist()}, **kw)
  return state, losses


def test_fit_over_lanes_hooks_and_resume(tmp_path, monkeypatch):
  whole, losses = _lane_fit(tmp_path / "a", _LaneBatches())
  assert np.isfinite(losses).all() and not np.array_equal(losses[0], losses[1])
  rows = read_jsonl(tmp_path / "a" / "metrics.jsonl")
  assert [r["step"] for r in rows] == list(range(1, 7))
  assert rows[2] == {"step": 3, "loss_lane0": losses[0, 2], "loss_lane1": losses[1, 2]}
  with pytest.raises(KeyboardInterrupt):  # killed during step 5, after the step-4 checkpoint
    _lane_fit(tmp_path / "b", _LaneBatches(crash_at=5))
  resumed, again = _lane_fit(tmp_path / "b", _LaneBatches())
  np.testing.assert_array_equal(again, losses)  # steps 1-4 from the checkpoint's extra
  chex.assert_trees_all_equal(resumed, whole)
  assert read_jsonl(tmp_path / "b" / "metrics.jsonl") == rows
  monkeypatch.chdir(tmp_path / "a")
  before = sorted(tmp_path.rglob("*"))
  _, nowhere = _lane_fit(None, _LaneBatches())  # out_dir=None writes nothing
  np.testing.assert_array_equal(nowhere, losses)
  assert sorted(tmp_path.rglob("*")) == before


def test_fit_describe_bad_names_the_failing_lane(tmp_path):
  def describe(step, state, metrics):
    bad = np.flatnonzero(~np.isfinite(np.asarray(metrics["loss"])))
    return f"lanes {bad.tolist()} diverged at step {step}"

  with pytest.raises(NonFiniteError, match=r"^lanes \[1\] diverged at step \d; no checkpoint"):
    _lane_fit(None, _LaneBatches(), lrs=(0.05, 1e18), describe_bad=describe)
