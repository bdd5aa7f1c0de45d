"""Class-balanced resampling of the shared copies vs an independent NumPy loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.federated import pool as pool_lib
from jaxlab.federated.types import FedData
from jaxlab.methods.fedfed import resample


def numpy_balanced(u_class, u_rest, labels, count, n, num_classes):
  """Reference: per class, the q rows with the smallest u_class (ties by row id), then
  the n - q·C valid rows with the smallest u_rest."""
  q = n // num_classes
  out = []
  for c in range(num_classes):
    rows = [i for i in range(count) if labels[i] == c]
    rows.sort(key=lambda i: (u_class[i], i))
    out += [rows[r % len(rows)] for r in range(q)]
  rest = sorted(range(count), key=lambda i: (u_rest[i], i))
  out += rest[: n - q * num_classes]
  return np.array(out)


@pytest.mark.parametrize("n,count", [(23, 60), (40, 57), (7, 50), (30, 30)])
def test_balanced_indices_equal_numpy_reference(n, count):
  rs = np.random.RandomState(n)
  p, c = 64, 5
  labels = rs.randint(0, c, p).astype(np.int32)
  u1, u2 = rs.rand(p).astype(np.float32), rs.rand(p).astype(np.float32)
  got = resample.balanced_indices(jnp.asarray(u1), jnp.asarray(u2), jnp.asarray(labels),
                                  jnp.int32(count), jnp.int32(n), c, 48)
  np.testing.assert_array_equal(np.asarray(got)[:n], numpy_balanced(u1, u2, labels, count, n, c))


def test_class_balance_no_repeats_and_determinism():
  rs = np.random.RandomState(0)
  labels = jnp.asarray(rs.randint(0, 10, 500).astype(np.int32))
  n = 137
  a = np.asarray(resample.draw(jax.random.key(3), labels, jnp.int32(480), jnp.int32(n), 10, 200))
  b = np.asarray(resample.draw(jax.random.key(3), labels, jnp.int32(480), jnp.int32(n), 10, 200))
  c = np.asarray(resample.draw(jax.random.key(4), labels, jnp.int32(480), jnp.int32(n), 10, 200))
  np.testing.assert_array_equal(a, b)                     # deterministic from the key
  assert not np.array_equal(a[:n], c[:n])
  q = n // 10
  head = np.asarray(labels)[a[: q * 10]]
  np.testing.assert_array_equal(np.bincount(head, minlength=10), np.full(10, q))
  assert len(set(a[: q * 10].tolist())) == q * 10         # without replacement
  assert a[:n].max() < 480                                # never a padding row


def test_pool_labels_follow_pool_build_order():
  k, width = 3, 5
  y = np.arange(20, dtype=np.int32) % 7
  idx = np.array([[4, 9, 0, 0, 0], [1, 2, 3, 11, 12], [7, 0, 0, 0, 0]], np.int32)
  n = np.array([2, 5, 1], np.int32)
  data = FedData(jnp.zeros((20, 1)), jnp.asarray(y), jnp.asarray(idx), jnp.asarray(n))
  pool = pool_lib.Pool(width, lambda s, d, m, key: (
    d.y[jnp.take(d.idx, m.id, axis=0)], m.n))               # rows = their own labels
  built = pool_lib.build(pool, None, data, jax.random.key(0))
  expect = np.concatenate([y[idx[i, : n[i]]] for i in range(k)])
  got = np.asarray(resample.pool_labels(data))
  np.testing.assert_array_equal(got[: n.sum()], expect)
  np.testing.assert_array_equal(np.asarray(built[pool_lib.POOL])[: n.sum()], got[: n.sum()])


def test_sampler_batch_is_raw_plus_two_balanced_copies():
  rs = np.random.RandomState(1)
  n_total, width, b = 40, 20, 4
  y = rs.randint(0, 4, n_total).astype(np.int32)
  x = rs.randint(0, 255, (n_total, 4, 4, 1)).astype(np.uint8)
  idx = np.stack([np.arange(20), np.arange(20, 40)]).astype(np.int32)
  pool = jnp.asarray(rs.rand(n_total, 2, 4, 4, 1).astype(np.float32))
  data = FedData(jnp.asarray(x), jnp.asarray(y), jnp.asarray(idx), jnp.asarray([20, 12]),
                 {pool_lib.POOL: pool, pool_lib.POOL_N: jnp.int32(32)})
  from jaxlab.federated.types import ClientMeta
  meta = ClientMeta(jnp.int32(1), jnp.int32(12), jnp.int32(3), jnp.float32(12))
  s = resample.sampler(b, 1, 4, lambda a: a.astype(jnp.float32) / 255.0, crop_pad=0, flip=False)
  st = s.prepare(data, meta, jax.random.key(0))
  seen = []
  for t in range(3):
    bt = s.batch(data, meta, st, jnp.int32(t))
    assert bt["x"].shape == (3 * b, 4, 4, 1) and bt["y"].shape == (3 * b,)
    raw_ids = np.asarray(st[0])[np.asarray(st[1])[0, t * b:(t + 1) * b]]
    np.testing.assert_array_equal(np.asarray(bt["y"][:b]), y[raw_ids])
    np.testing.assert_allclose(np.asarray(bt["x"][:b]), x[raw_ids] / 255.0, atol=1e-6)
    seen += raw_ids.tolist()
  assert sorted(seen) == list(range(20, 32))              # one epoch visits every local row
  sel1 = np.asarray(st[2])[0, :12]
  np.testing.assert_array_equal(np.bincount(np.asarray(st[4])[sel1[:12]], minlength=4), [3] * 4)
