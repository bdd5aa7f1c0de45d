"""JAX weighted logistic regression == scikit-learn's LogisticRegression optimum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from jaxlab.core.errors import DataError
from jaxlab.methods.apw import learners, logreg

import apw_helpers  # tests/methods/apw/conftest.py puts it on sys.path


_data, _sk = apw_helpers.data, apw_helpers.sk_fit


@pytest.mark.parametrize("c,hdt,refresh", [(1.0, None, 1), (0.3, None, 1),
                                           (1.0, "float32", 1), (1.0, None, 3)])
def test_matches_sklearn_weighted(c, hdt, refresh):
  x, y, s = _data()
  with jax.enable_x64(True):
    w, b = jax.jit(lambda *a: logreg.fit(*a, c, steps=15 * refresh, hessian_dtype=hdt,
                                         refresh=refresh))(x, y, s)
    ours = np.r_[np.asarray(w), float(b)]
  np.testing.assert_allclose(ours, _sk(x, y, s, c), atol=1e-6)


def test_matches_sklearn_lbfgs_default_solver():
  # The release's solver (lbfgs) with a tight tolerance reaches the same optimum.
  x, y, s = _data(1)
  clf = LogisticRegression(tol=1e-10, max_iter=10000).fit(x, y, sample_weight=s)
  w, b = logreg.fit_checked(x, y, s)
  np.testing.assert_allclose(np.r_[np.asarray(w), float(b)],
                             np.r_[clf.coef_.ravel(), clf.intercept_], atol=1e-4)
  yhat = (x @ np.asarray(w) + float(b) > 0).astype(int)
  assert (yhat == clf.predict(x)).all()


def test_weight_scale_changes_regularisation():
  # Sum-form objective: scaling s by k is the same as C -> k C.
  x, y, s = _data(2)
  fit = jax.jit(logreg.fit)
  with jax.enable_x64(True):
    a = fit(jnp.asarray(x), jnp.asarray(y), jnp.asarray(3 * s), 1.0)
    b = fit(jnp.asarray(x), jnp.asarray(y), jnp.asarray(s), 3.0)
  np.testing.assert_allclose(np.asarray(a[0]), np.asarray(b[0]), atol=1e-9)


def test_vmap_over_weights_equals_loop():
  x, y, s = _data(3)
  ss = np.stack([s, s[::-1], np.ones_like(s)])
  fit = jax.jit(logreg.fit)
  with jax.enable_x64(True):
    xs, ys = jnp.asarray(x), jnp.asarray(y)
    batched = jax.jit(jax.vmap(logreg.fit, in_axes=(None, None, 0)))(xs, ys, jnp.asarray(ss))
    for i in range(3):
      one = fit(xs, ys, jnp.asarray(ss[i]))
      np.testing.assert_allclose(np.asarray(batched[0][i]), np.asarray(one[0]), atol=1e-10)


def test_warm_start_reaches_same_optimum():
  x, y, s = _data(4)
  fit = jax.jit(logreg.fit, static_argnames="steps")
  with jax.enable_x64(True):
    xs, ys = jnp.asarray(x), jnp.asarray(y)
    cold = fit(xs, ys, jnp.asarray(s))
    near = fit(xs, ys, jnp.asarray(s * 1.1))
    warm = fit(xs, ys, jnp.asarray(s), steps=4, init=near)
    assert float(logreg.gradient_norm(warm, xs, ys, jnp.asarray(s))) < 1e-9
  np.testing.assert_allclose(np.asarray(warm[0]), np.asarray(cold[0]), atol=1e-8)


def test_bad_weights_raise():
  x, y, s = _data(5, n=20)
  with pytest.raises(DataError, match="all zero"):
    logreg.fit_checked(x, y, np.zeros_like(s))
  with pytest.raises(DataError, match=">= 0"):
    logreg.fit_checked(x, y, -s)
  with pytest.raises(DataError, match="binary"):
    logreg.fit_checked(x, y + 1, s)


def test_mlp_learner_fits_weighted_data():
  x, y, s = _data(6, n=400, d=4)
  lr = learners.mlp(hidden=(16,), steps=200, lr=3e-2)
  p = jax.jit(lr.fit)(lr.init(jax.random.key(0), 4), jnp.asarray(x, jnp.float32),
                      jnp.asarray(y), jnp.asarray(s, jnp.float32), None)
  acc = float(((lr.proba(p, jnp.asarray(x, jnp.float32)) > 0.5) == y).mean())
  clf = LogisticRegression().fit(x, y, sample_weight=s)
  assert acc >= clf.score(x, y) - 0.03
