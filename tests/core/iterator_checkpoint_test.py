import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab.core.checkpoint import Checkpointer
from jaxlab.core.errors import CheckpointError, DataError
from jaxlab.core.state import TrainState
from jaxlab.data import BatchIterator


def _arrays(n=10):
  return {"x": np.arange(n * 2).reshape(n, 2), "y": np.arange(n)}


def test_iterator_is_deterministic_and_resumable():
  a = BatchIterator(_arrays(), 3, seed=7)
  seq = [next(a)["y"] for _ in range(8)]  # crosses epoch boundaries
  b = BatchIterator(_arrays(), 3, seed=7)
  for _ in range(5):
    next(b)
  saved = b.state()
  c = BatchIterator(_arrays(), 3, seed=7)
  c.restore(saved)
  rest = [next(c)["y"] for _ in range(3)]
  np.testing.assert_array_equal(np.stack(seq[5:]), np.stack(rest))
  # every epoch is a permutation: 3 full batches of 10 rows, one dropped
  assert len(set(np.concatenate(seq[:3]).tolist())) == 9
  assert not np.array_equal(seq[0], BatchIterator(_arrays(), 3, seed=8).__next__()["y"])


def test_iterator_rejects_bad_input():
  with pytest.raises(DataError, match="different lengths"):
    BatchIterator({"x": np.zeros(3), "y": np.zeros(4)}, 2)
  with pytest.raises(DataError, match="batch_size"):
    BatchIterator(_arrays(), 11)


def _state(width):
  params = {"w": jnp.arange(width, dtype=jnp.float32)}
  return TrainState.create(params, optax.adam(1e-3), hparams={"lr": 0.1})


def test_checkpoint_roundtrip_exact(tmp_path):
  ck = Checkpointer(tmp_path / "ck")
  s = _state(4).replace(step=jnp.array(7, jnp.int32))
  ck.save(7, s, {"data": {"epoch": 1, "index": 3}, "step": 7})
  fresh = _state(4)
  restored, extra = Checkpointer(tmp_path / "ck").restore(fresh)
  assert extra == {"data": {"epoch": 1, "index": 3}, "step": 7}
  chex_equal = jax.tree.map(lambda a, b: np.array_equal(np.asarray(a), np.asarray(b)), s, restored)
  assert all(jax.tree.leaves(chex_equal))


def test_checkpoint_of_wrong_shape_is_a_clear_error(tmp_path):
  ck = Checkpointer(tmp_path / "ck")
  ck.save(1, _state(4), {"step": 1})
  with pytest.raises(CheckpointError, match=r"shape \(4,\).*expects \(5,\)"):
    Checkpointer(tmp_path / "ck").restore(_state(5))


def test_restore_without_checkpoint(tmp_path):
  with pytest.raises(CheckpointError, match="no checkpoint"):
    Checkpointer(tmp_path / "none").restore(_state(2))
