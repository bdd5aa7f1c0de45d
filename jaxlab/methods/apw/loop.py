"""The APW outer loop as one compiled program, vmapped over a grid of eta x seeds.

Per iteration t, in the release's order (the order matters):
  1. refit the classifier with weights s(t);
  2. hard predictions and P(y=1) on train;
  3. priority u = exp(-eta |p - 1/2|);
  4. s(t+1) from u and the OLD multipliers lam(t);
  5. lam(t+1) = lam(t) * ratio(train predictions)   (a one-step lag);
  6. metrics of the step-1 model on test (and on train).
Iteration 1 (s = 1) is plain ERM. Every iteration is logged; no stopping rule.

The scan runs over iterations and each iteration handles all etas at once (a vmap
inside the scan body), so work the etas share (the CG solver's preconditioner)
is done once per iteration; seeds are an outer vmap.
"""

import dataclasses
import functools
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError, DataError
from jaxlab.methods.apw import learners, logreg, reweigh
from jaxlab.methods.apw.data import FairData, check_binary
from jaxlab.methods.apw.metrics import fairness


@dataclasses.dataclass(frozen=True, kw_only=True)
class APWConfig:
  """APW loop settings (static); eta travels as an array so a sweep is a vmap.

  Attributes:
    kind: fairness notion targeted: "eop", "eo" or "dp".
    iterations: outer iterations T (the release's --epoch, 200).
    alpha: smoothing constant of the multiplier update (release: 0 / 1000 / 1000).
    model: "logreg" (sklearn-equivalent LR, C = ``c``) or "mlp".
    newton_steps: Newton steps of an LR fit from scratch (fixed count).
    warm_start: start each fit from the previous iterate (``warm_steps`` steps)
      instead of from scratch; the LR optimum is unique, so only the convergence
      error changes (logged as ``grad_norm``). The release refits from scratch.
    warm_steps: Newton steps per iteration when warm-starting.
    hessian_dtype: dtype of the Newton Hessian ("float32" is 4-10x cheaper on
      CPU; the gradient stays float64, so the fixed point is unchanged) or "";
      for ``solver="cg"`` the dtype of the CG and its preconditioner.
    solver: "newton" (Cholesky of the full Hessian per eta and step) or "cg"
      (Newton-CG, ``logreg.fit_cg``: matvecs per eta plus one preconditioner per
      iteration shared by all etas; much cheaper for many etas). Both reach the
      same optimum; ``grad_norm`` logs how closely.
    cg_iters, chunks: CG steps per Newton step and preconditioner chunks (cg).
    quirk_float32_proba: the release casts P(y=0) to float32 before |p - 1/2|.
    quirk_dp_alpha_numerator_only: the release's DP update adds alpha to the
      numerator only.
    multiplier_step: gamma in lam <- lam * ratio**gamma. 1.0 is the release;
      gamma < 1 damps the update (reconstructed [R], not in the release).
    x64: run in float64 (needed for sklearn parity of the LR).
  """

  kind: Literal["eop", "eo", "dp"] = "eop"
  iterations: int = 200
  alpha: float = 0.0
  model: Literal["logreg", "mlp"] = "logreg"
  c: float = 1.0
  newton_steps: int = 12
  warm_start: bool = False
  warm_steps: int = 4
  hessian_dtype: str = "float32"
  solver: Literal["newton", "cg"] = "newton"
  cg_iters: int = 8
  chunks: int = 64
  mlp_hidden: tuple[int, ...] = (64,)
  mlp_steps: int = 300
  mlp_lr: float = 1e-2
  quirk_float32_proba: bool = True
  quirk_dp_alpha_numerator_only: bool = True
  multiplier_step: float = 1.0
  x64: bool = True

  def __post_init__(self):
    if self.kind not in reweigh.KINDS:
      raise ConfigError(f"kind={self.kind!r}: choose one of {reweigh.KINDS}")
    if self.model not in ("logreg", "mlp"):
      raise ConfigError(f"model={self.model!r}: choose 'logreg' or 'mlp'")
    if self.iterations < 1 or self.newton_steps < 1:
      raise ConfigError("iterations and newton_steps must be >= 1")
    if self.solver not in ("newton", "cg"):
      raise ConfigError(f"solver={self.solver!r}: choose 'newton' or 'cg'")
    if self.cg_iters < 1 or self.chunks < 1:
      raise ConfigError("cg_iters and chunks must be >= 1")


class APWState(NamedTuple):
  """Loop carry (arrays only): weights s [n], multipliers lam [4], last params, step."""

  s: jax.Array
  lam: jax.Array
  params: Any
  step: jax.Array


def make_learner(cfg: APWConfig, warm: bool = False) -> learners.Learner:
  """The classifier; ``warm`` = the per-iteration fit of a warm-started loop."""
  if cfg.model == "logreg":
    steps = cfg.warm_steps if warm else cfg.newton_steps
    if cfg.solver == "cg":
      return learners.logistic_cg(cfg.c, steps, cfg.cg_iters, cfg.chunks,
                                  cfg.hessian_dtype or None)
    return learners.logistic(cfg.c, steps, cfg.hessian_dtype or None)
  steps = max(cfg.mlp_steps // 4, 1) if warm else cfg.mlp_steps
  return learners.mlp(cfg.mlp_hidden, steps, cfg.mlp_lr)


def init_state(cfg: APWConfig, data: FairData, key: jax.Array) -> APWState:
  """s = 1, lam = 1 and the start params (one split, no seed axis).

  Warm-started loops begin from the converged s = 1 (ERM) fit, so their first
  iteration is as accurate as a cold fit.
  """
  f = jnp.result_type(float)
  n, d = data.x_train.shape
  lr = make_learner(cfg)
  s = jnp.ones(n, f)
  p0 = lr.init(key, d)
  if cfg.warm_start:
    p0 = _fit_from(lr, p0, data, s, key)
  return APWState(s, jnp.ones(4, f), p0, jnp.zeros((), jnp.int32))


def _fit_from(lr: learners.Learner, p0, data: FairData, s, key):
  """One fit from ``p0``, nothing shared (a learner that needs it prepares its own)."""
  return lr.fit(p0, data.x_train, data.y_train, s, key, None)


def iterate(cfg: APWConfig, data: FairData, etas, key, state: APWState, length: int):
  """Runs ``length`` APW iterations from ``state`` for etas [E] at once (one split; pure).

  Args:
    etas: [E].  state: APWState with leaves [E, ...].

  Returns:
    (state, history) with history a dict of [length, E] (lam: [length, E, 4]) arrays.
  """
  lr = make_learner(cfg, warm=cfg.warm_start)
  xtr, ytr, atr, xte, yte, ate = data[:6]
  group = reweigh.subgroup(ytr, atr)
  cold = jax.tree.map(lambda v: jnp.broadcast_to(v, (etas.shape[0], *v.shape)),
                      lr.init(key, xtr.shape[1]))

  def update(eta, st: APWState, params):
    p1 = lr.proba(params, xtr)
    yhat = (p1 > 0.5).astype(jnp.int32)
    u = reweigh.priority(p1, eta, cfg.quirk_float32_proba)
    s_new = reweigh.sample_weights(cfg.kind, ytr, atr, u, st.lam)
    ratio = reweigh.multiplier_ratio(
      cfg.kind, yhat, ytr, atr, cfg.alpha, cfg.quirk_dp_alpha_numerator_only)
    test = fairness((lr.proba(params, xte) > 0.5).astype(jnp.int32), yte, ate)
    train = fairness(yhat, ytr, atr)
    finite = jnp.all(jnp.isfinite(st.s)) & jnp.all(jnp.isfinite(ratio)) & jnp.all(
      jnp.array([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(params)]))
    out = {**test, **{f"train_{k}": v for k, v in train.items()},
           "lam": st.lam, "s_sum": st.s.sum(), "step": st.step + 1, "finite": finite}
    if cfg.model == "logreg":
      out["grad_norm"] = logreg.gradient_norm(params, xtr, ytr, st.s, cfg.c)
    if cfg.multiplier_step != 1.0:
      ratio = ratio ** cfg.multiplier_step
    return APWState(s_new, st.lam * ratio, params, st.step + 1), out

  def body(st: APWState, _):
    start = st.params if cfg.warm_start else cold
    # Once for all etas; fits from scratch prepare their own from their iterates.
    shared = lr.prepare(start, xtr, group) if cfg.warm_start else None
    params = jax.vmap(lambda p0, s: lr.fit(p0, xtr, ytr, s, key, shared))(start, st.s)
    return jax.vmap(update)(etas, st, params)

  return jax.lax.scan(body, state, None, length=length)


def fit_once(cfg: APWConfig, data: FairData, s, key) -> dict[str, jax.Array]:
  """One weighted fit (ERM: s = 1; Kamiran-Calders: its weights) -> test metrics."""
  lr = make_learner(cfg)
  params = _fit_from(lr, lr.init(key, data.x_train.shape[1]), data, s, key)
  return fairness((lr.proba(params, data.x_test) > 0.5).astype(jnp.int32),
                  data.y_test, data.a_test)


def _grid(fn):
  """vmap over seeds [S] (data, key, state); the etas [E] are handled inside ``fn``."""
  return jax.vmap(fn, in_axes=(0, None, 0, 0))


def _cache_key(cfg: APWConfig) -> APWConfig:
  return dataclasses.replace(cfg, iterations=1)  # T does not enter a compiled block


def compiled_sweep(cfg: APWConfig, length: int):
  """jit(data [S], etas [E], keys [S], states [S, E]) -> (states, history [S, E, length])."""
  return _compiled_sweep(_cache_key(cfg), length)


def compiled_init(cfg: APWConfig, n_eta: int):
  """jit(data [S], keys [S]) -> APWState [S, n_eta]."""
  return _compiled_init(_cache_key(cfg), n_eta)


@functools.lru_cache(maxsize=32)
def _compiled_sweep(cfg: APWConfig, length: int):
  def one(data, etas, key, state):
    state, hist = iterate(cfg, data, etas, key, state, length)
    return state, jax.tree.map(lambda v: jnp.moveaxis(v, 0, 1), hist)  # [E, length, ...]
  return jax.jit(_grid(one), donate_argnums=(3,))


@functools.lru_cache(maxsize=32)
def _compiled_init(cfg: APWConfig, n_eta: int):
  def one(data, key):
    st = init_state(cfg, data, key)
    return jax.tree.map(lambda v: jnp.broadcast_to(v, (n_eta, *v.shape)), st)
  return jax.jit(jax.vmap(one, in_axes=(0, 0)))


def validate(data: FairData, kind: str = "eo") -> None:
  """Host-side checks of a (seed-stacked) FairData.

  Raises:
    DataError: labels or sensitive attribute not binary, a needed (a, y)
      subgroup empty in train, non-finite features or mismatched lengths.
  """
  for name in ("y_train", "a_train", "y_test", "a_test"):
    for row in np.atleast_2d(np.asarray(getattr(data, name))):
      check_binary(row, name)
  x = np.asarray(data.x_train)
  if not np.isfinite(x).all() or not np.isfinite(np.asarray(data.x_test)).all():
    raise DataError("features contain NaN/inf; impute or drop those rows first")
  ys, as_ = np.atleast_2d(data.y_train), np.atleast_2d(data.a_train)
  if ys.shape[-1] != x.shape[-2]:
    raise DataError(f"y_train has {ys.shape[-1]} rows but x_train {x.shape[-2]}")
  need = reweigh.GROUPS if kind != "eop" else ((1, 1), (0, 1))
  for y, a in zip(ys, as_):
    for ga, gy in need:
      if not np.any((a == ga) & (y == gy)):
        raise DataError(f"train subgroup (a={ga}, y={gy}) is empty; APW-{kind} needs "
                        "every such subgroup present (use another split or seed)")


def seed_keys(seeds) -> jax.Array:
  return jax.vmap(lambda s: jax.random.fold_in(jax.random.key(0), s))(jnp.asarray(seeds))


def run_sweep(cfg: APWConfig, data: FairData, etas, seeds=(0,), length: int | None = None,
              state: APWState | None = None, mesh=None):
  """Host entry: APW over etas [E] x seeds [S] (data stacked [S, ...]), one call.

  Args:
    mesh: optional mesh with a ``sweep`` axis; the eta axis (and the state's)
      is then split over its devices (jit + NamedSharding; E must divide).

  Returns:
    (state, history) with history leaves [S, E, length, ...] as numpy.
  """
  validate(data, cfg.kind)
  length = cfg.iterations if length is None else length
  with jax.enable_x64(cfg.x64):
    d = _device_data(data)
    etas = jnp.asarray(etas, jnp.result_type(float))
    keys = seed_keys(seeds)
    if state is None:
      state = compiled_init(cfg, etas.shape[0])(d, keys)
    if mesh is not None:
      etas, state = _shard_sweep(mesh, etas, state)
    state, hist = compiled_sweep(cfg, length)(d, etas, keys, state)
    return state, jax.tree.map(np.asarray, hist)


def _shard_sweep(mesh, etas, state):
  """Places etas [E] and state leaves [S, E, ...] split over the mesh's sweep axis."""
  from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: PLC0415

  from jaxlab.core import axes  # noqa: PLC0415

  size = mesh.shape[axes.SWEEP]
  if etas.shape[0] % size:
    raise ConfigError(f"{etas.shape[0]} etas do not split over {size} devices on the "
                      f"'{axes.SWEEP}' axis; use a multiple of {size} etas")
  etas = jax.device_put(etas, NamedSharding(mesh, P(axes.SWEEP)))
  state = jax.device_put(state, jax.tree.map(
    lambda v: NamedSharding(mesh, P(None, axes.SWEEP) if v.ndim >= 2 else P()), state))
  return etas, state


def _device_data(data: FairData) -> FairData:
  f = jnp.result_type(float)
  return FairData(*(jnp.asarray(v, f if i in (0, 3) else jnp.int32)
                    for i, v in enumerate(data[:6])), ())


def baselines(cfg: APWConfig, data: FairData, seeds=(0,)) -> dict[str, dict[str, np.ndarray]]:
  """ERM (s = 1) and Kamiran-Calders test metrics per seed: {name: {metric: [S]}}."""
  validate(data, "eo")
  with jax.enable_x64(cfg.x64):
    key_cfg = dataclasses.replace(cfg, kind="eo", alpha=0.0, iterations=1, warm_start=False,
                                  warm_steps=1)  # only the learner matters
    out = _compiled_baselines(key_cfg)(_device_data(data), seed_keys(seeds))
    return jax.tree.map(np.asarray, out)


@functools.lru_cache(maxsize=8)
def _compiled_baselines(cfg: APWConfig):
  def both(dd, key):
    erm = fit_once(cfg, dd, jnp.ones_like(dd.y_train, jnp.result_type(float)), key)
    kc = fit_once(cfg, dd, reweigh.kamiran_calders(dd.y_train, dd.a_train), key)
    return {"erm": erm, "kamiran_calders": kc}

  return jax.jit(jax.vmap(both))
