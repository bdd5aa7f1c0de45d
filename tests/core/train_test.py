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
