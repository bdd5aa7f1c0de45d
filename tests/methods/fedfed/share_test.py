"""The share: x_r + x_s = x, noise shapes and independence, the pool map."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.methods.fedfed import losses, share
from tests.methods.fedfed import helpers


def test_split_adds_back_to_x_and_uses_eval_mode():
  m = helpers.tiny_vae()
  x = helpers.images(10)
  v = helpers.variables(m, x)
  xr, xs = share.split(m, v, x, chunk=4)
  np.testing.assert_allclose(np.asarray(xr + xs), np.asarray(x), atol=1e-6)
  assert float(xr.min()) >= 0.0 and float(xr.max()) <= 1.0          # sigmoid output
  # Eval mode (h = mu, running BN stats): row i does not depend on the other rows.
  xr1, _ = share.split(m, v, x[3:4])
  np.testing.assert_allclose(np.asarray(xr1[0]), np.asarray(xr[3]), atol=1e-5)


def test_noise_shapes_and_per_sample_independence():
  xs = jnp.zeros((64, 8, 8, 1))
  key = jax.random.key(1)
  x1, x2 = share.noised_copies(key, xs, 0.2, 0.25)
  assert x1.shape == x2.shape == xs.shape
  a1, a2 = np.asarray(x1).reshape(64, -1), np.asarray(x2).reshape(64, -1)
  np.testing.assert_allclose(a1.std(), 0.2, rtol=0.05)
  np.testing.assert_allclose(a2.std(), 0.25, rtol=0.05)
  # Different rows and the two copies draw independently: correlations near 0.
  assert abs(np.corrcoef(a1[0], a1[1])[0, 1]) < 0.35
  assert abs(np.corrcoef(a1.ravel(), a2.ravel())[0, 1]) < 0.05
  assert not np.allclose(a1[0], a1[1])
  # sigma 0 shares x_s exactly.
  z1, _ = share.noised_copies(key, xs + 1.0, 0.0, 0.0)
  np.testing.assert_array_equal(np.asarray(z1), 1.0)


def test_quirk_per_batch_noise_is_shared_within_a_block():
  xs = jnp.zeros((10, 4, 4, 1))
  out = np.asarray(losses.add_noise(jax.random.key(2), xs, 1.0, per_batch=4))
  for blk in (range(0, 4), range(4, 8), range(8, 10)):
    for i in blk:
      np.testing.assert_array_equal(out[i], out[blk[0]])
  assert not np.allclose(out[0], out[4]) and not np.allclose(out[4], out[8])


def test_pool_map_matches_split_plus_noise():
  from jaxlab.federated.types import ClientMeta, FedData, ServerState
  from jaxlab.methods.fedfed import SIGMA1, SIGMA2
  m = helpers.tiny_vae()
  x8 = (np.asarray(helpers.images(12)) * 255).astype(np.uint8)
  y = helpers.labels(12)
  v = helpers.variables(m, jnp.asarray(x8[:2], jnp.float32))
  data = FedData(jnp.asarray(x8), jnp.asarray(y), jnp.asarray([[3, 5, 7, 0], [1, 2, 4, 6]]),
                 jnp.asarray([3, 4]))
  server = ServerState((), (), (), (), {share.VAE: v},
                       {SIGMA1: jnp.float32(0.0), SIGMA2: jnp.float32(0.5)}, jnp.int32(0))
  pre = lambda a: a.astype(jnp.float32) / 255.0
  pool = share.make_pool(m, helpers.CFG, 4, pre)
  meta = ClientMeta(jnp.int32(0), jnp.int32(3), jnp.int32(0), jnp.float32(3))
  rows, count = pool.map(server, data, meta, jax.random.key(0))
  assert rows.shape == (4, 2, 8, 8, 1) and int(count) == 3
  _, xs = share.split(m, v, pre(data.x[jnp.asarray([3, 5, 7])]))
  np.testing.assert_allclose(np.asarray(rows[:3, 0]), np.asarray(xs), atol=1e-5)   # sigma1 = 0
  assert float(jnp.abs(rows[:3, 1] - xs).mean()) > 0.2                             # sigma2 = 0.5
