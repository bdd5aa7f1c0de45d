"""Newton-CG logistic regression (shared chunked-Gram preconditioner) == sklearn's optimum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.methods.apw import learners, logreg

import apw_helpers  # tests/methods/apw/conftest.py puts it on sys.path


_data, _sk = apw_helpers.data, apw_helpers.sk_fit


def test_approx_hessian_exact_when_curvature_follows_reference():
  # Written out with numpy: rows sorted by (key2, key1), 5 chunks of 8 (the last padded).
  rng = np.random.default_rng(0)
  n, d, B = 37, 4, 5
  x = rng.normal(size=(n, d))
  k1, k2 = rng.random(n), rng.integers(0, 2, n)
  ref = rng.uniform(0.1, 2.0, n)
  order = np.lexsort((k1, k2))
  chunk = np.empty(n, int)
  chunk[order] = np.arange(n) // 8
  h = ref * rng.uniform(0.5, 3.0, B)[chunk]  # proportional to ref on every chunk
  z = np.c_[x, np.ones(n)]
  want = (z * h[:, None]).T @ z + np.diag(np.r_[np.ones(d), 0.0])
  with jax.enable_x64(True):
    pc = logreg.precondition(jnp.asarray(x), (jnp.asarray(k1), jnp.asarray(k2)),
                             jnp.asarray(ref), chunks=B)
    got = np.asarray(logreg.approx_hessian(pc, jnp.asarray(h)))
  want[-1, -1] += 1e-6 * (1.0 + want[-1, -1])
  np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [None, "float32"])
def test_fit_cg_matches_sklearn_shared_and_cold(dtype):
  x, y, s = _data(1)
  want = _sk(x, y, s)
  with jax.enable_x64(True):
    xs, ys, ss = jnp.asarray(x), jnp.asarray(y), jnp.asarray(s)
    lr = learners.logistic_cg(1.0, steps=8, cg_iters=4, chunks=16, dtype=dtype)
    zero = (jnp.zeros(x.shape[1]), jnp.zeros(()))
    cold = jax.jit(lambda s: lr.fit(zero, xs, ys, s, None, None))(ss)
    # Warm: from a nearby optimum with a preconditioner shared by two weight vectors.
    near = jax.jit(lambda s: lr.fit(zero, xs, ys, s, None, None))(ss * 1.5)
    group = jnp.asarray(y) + 2 * (jnp.asarray(x[:, 0]) > 0)
    pc = lr.prepare(near, xs, group)
    both = jax.jit(jax.vmap(lambda s: lr.fit(near, xs, ys, s, None, pc)))(jnp.stack([ss, ss[::-1]]))
  tol = 1e-6 if dtype is None else 1e-5
  np.testing.assert_allclose(np.r_[np.asarray(cold[0]), float(cold[1])], want, atol=tol)
  np.testing.assert_allclose(np.r_[np.asarray(both[0][0]), float(both[1][0])], want, atol=tol)
  np.testing.assert_allclose(np.r_[np.asarray(both[0][1]), float(both[1][1])],
                             _sk(x, y, s[::-1]), atol=tol)


def test_few_cg_iterations_still_reach_the_optimum():
  # 2 CG steps per Newton step on 7 unknowns: the direction is inexact, the fixed point is not.
  x, y, s = _data(2, d=6)
  with jax.enable_x64(True):
    xs, ys, ss = jnp.asarray(x), jnp.asarray(y), jnp.asarray(s)
    pc = logreg.precondition(xs, (jnp.zeros(len(y)),), jnp.ones(len(y)), chunks=8)
    p = jax.jit(lambda s: logreg.fit_cg(xs, ys, s, 0.5, pc=pc, steps=30, cg_iters=2))(ss)
    assert float(logreg.gradient_norm(p, xs, ys, ss, 0.5)) < 1e-10
  np.testing.assert_allclose(np.r_[np.asarray(p[0]), float(p[1])], _sk(x, y, s, 0.5), atol=1e-7)


def test_cg_direction_is_the_newton_direction():
  # With d+1 CG steps in float64 the direction solves the exact Newton system (numpy).
  x, y, s = _data(3, n=200, d=5)
  rng = np.random.default_rng(3)
  w, b, c = rng.normal(size=5) * 0.5, 0.2, 0.7
  z = np.c_[x, np.ones(len(y))]
  p = 1 / (1 + np.exp(-(x @ w + b)))
  g = np.r_[w, 0.0] + z.T @ (c * s * (p - y))
  hess = (z * (c * s * p * (1 - p))[:, None]).T @ z + np.diag(np.r_[np.ones(5), 0.0])
  with jax.enable_x64(True):
    xs = jnp.asarray(x)
    pc = logreg.precondition(xs, (jnp.asarray(x[:, 1]),), jnp.ones(len(y)), chunks=4)
    d = logreg.cg_direction((jnp.asarray(w), jnp.asarray(b)), xs, jnp.asarray(y, float),
                            jnp.asarray(s), c, pc, 6)
  np.testing.assert_allclose(np.asarray(d), np.linalg.solve(hess, g), rtol=1e-8, atol=1e-10)
