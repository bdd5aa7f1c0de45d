"""Matrix permanents in JAX: Ryser and Glynn, exact and jit/vmap-able.

For n <= 12 both formulas enumerate all their terms with one matmul against a
precomputed 0/1 (Ryser) or +-1 (Glynn) matrix; no Gray code is needed.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np


@functools.cache
def subset_masks(n: int) -> tuple[np.ndarray, np.ndarray]:
  """All 2^n column subsets as 0/1 rows and their Ryser signs (-1)^(n-|S|).

  Returns:
    masks: [2^n, n] float64 (row S has bit j of S at column j; S = 0 is the
      empty set, whose product term is 0 and so does no harm).
    signs: [2^n] float64.
  """
  s = np.arange(2**n)
  masks = ((s[:, None] >> np.arange(n)[None, :]) & 1).astype(np.float64)
  signs = (-1.0) ** (n - masks.sum(1))
  return masks, signs


@functools.cache
def glynn_deltas(n: int) -> tuple[np.ndarray, np.ndarray]:
  """The 2^(n-1) sign vectors delta with delta_0 = +1, and prod(delta)."""
  s = np.arange(2 ** (n - 1))
  bits = (s[:, None] >> np.arange(n - 1)[None, :]) & 1
  deltas = np.concatenate([np.ones((len(s), 1)), 1.0 - 2.0 * bits], 1)
  return deltas, deltas.prod(1)


def permanent_ryser(a: jax.Array) -> jax.Array:
  """perm(A) = (-1)^n sum_S (-1)^|S| prod_i sum_{j in S} A_ij.

  Args:
    a: [n, n] real or complex matrix.

  Returns:
    [] the permanent, in ``a``'s dtype.
  """
  n = a.shape[-1]
  masks, signs = subset_masks(n)
  rows = a @ jnp.asarray(masks, a.dtype).T  # [n, 2^n] row sums over each subset
  return jnp.sum(jnp.asarray(signs, a.dtype) * jnp.prod(rows, axis=0))


def permanent_glynn(a: jax.Array) -> jax.Array:
  """perm(A) = 2^-(n-1) sum_{delta, delta_0=1} prod(delta) prod_j sum_i delta_i A_ij.

  Args:
    a: [n, n] real or complex matrix.

  Returns:
    [] the permanent, in ``a``'s dtype.
  """
  n = a.shape[-1]
  deltas, sgn = glynn_deltas(n)
  cols = jnp.asarray(deltas, a.dtype) @ a  # [2^(n-1), n]
  return jnp.sum(jnp.asarray(sgn, a.dtype) * jnp.prod(cols, axis=1)) / 2 ** (n - 1)


def permanent(a: jax.Array, method: str = "ryser") -> jax.Array:
  """The permanent of ``a`` [..., n, n] by ``method`` ("ryser" | "glynn")."""
  fn = permanent_ryser if method == "ryser" else permanent_glynn
  for _ in range(a.ndim - 2):
    fn = jax.vmap(fn)
  return fn(a)
