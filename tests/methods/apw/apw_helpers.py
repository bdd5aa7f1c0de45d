"""Shared test data for the logistic-regression solvers, and sklearn's fit as the reference."""

import numpy as np
from sklearn.linear_model import LogisticRegression


def data(seed=0, n=300, d=6):
  """Weighted logistic data: x [n, d], labels y [n], positive sample weights s [n]."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d))
  w = rng.normal(size=d)
  y = (rng.random(n) < 1 / (1 + np.exp(-(x @ w + 0.3)))).astype(np.int32)
  s = rng.uniform(0.05, 4.0, n)
  return x, y, s


def sk_fit(x, y, s, c=1.0):
  """sklearn's weighted L2 logistic regression to tol 1e-12: [w..., b]."""
  clf = LogisticRegression(C=c, solver="newton-cholesky", tol=1e-12, max_iter=1000)
  clf.fit(x, y, sample_weight=s)
  return np.r_[clf.coef_.ravel(), clf.intercept_]
