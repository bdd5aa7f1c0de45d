"""Side-effect measurements shared by tuning studies: KL drift, NLL, last-token accuracy."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.models import decoder as dec


@functools.partial(jax.jit, static_argnums=0)
def _kl_chunk(cfg, p_ref, p_new, ids, mask):
  lr = jax.nn.log_softmax(dec.apply(cfg, p_ref, ids, mask)[0][:, :-1], -1)
  ln = jax.nn.log_softmax(dec.apply(cfg, p_new, ids, mask)[0][:, :-1], -1)
  kl = jnp.sum(jnp.exp(lr) * (lr - ln), -1)  # [b, t-1]
  tgt = ids[:, 1:, None]
  nll_r = -jnp.take_along_axis(lr, tgt, -1)[..., 0]
  nll_n = -jnp.take_along_axis(ln, tgt, -1)[..., 0]
  w = (mask[:, :-1] * mask[:, 1:]).astype(jnp.float32)  # real token predicting a real token
  return jnp.stack([jnp.sum(kl * w), jnp.sum(nll_r * w), jnp.sum(nll_n * w), jnp.sum(w)])


def kl_and_nll(cfg: dec.DecoderConfig, p_ref: dict, p_new: dict, ids: np.ndarray,
               mask: np.ndarray, *, chunk: int = 8) -> dict[str, float]:
  """Next-token KL(ref || new) summed over the vocabulary, averaged per token (SPT's
  ``evaluate_kl_divergence``), plus the NLL of both models on the same tokens (fp32).

  Args:
    cfg: model config.
    p_ref, p_new: original and tuned params.
    ids, mask: [n, t] left-padded passages.
    chunk: passages per jitted call (memory: chunk * t * V floats, twice).
  """
  tot = np.zeros(4)
  n = ids.shape[0]
  for s in range(0, n, chunk):
    idx = np.arange(s, s + chunk) % n
    m = np.asarray(mask[idx]).copy()
    m[np.arange(s, s + chunk) >= n] = 0  # wrapped padding rows count nothing
    tot += np.asarray(_kl_chunk(cfg, p_ref, p_new, jnp.asarray(ids[idx]), jnp.asarray(m)))
  return {"kl": tot[0] / tot[3], "nll_ref": tot[1] / tot[3], "nll_new": tot[2] / tot[3]}


@functools.partial(jax.jit, static_argnums=0)
def last_logits(cfg, params, ids, mask):
  """[b, V] fp32 logits at the last position."""
  return dec.apply(cfg, params, ids, mask)[0][:, -1]


def accuracy(cfg: dec.DecoderConfig, params: dict, ids: np.ndarray, mask: np.ndarray,
             targets: np.ndarray, *, chunk: int = 64) -> tuple[float, np.ndarray]:
  """Share of prompts whose argmax next token is the target; also the per-prompt 0/1."""
  hits = []
  for s in range(0, ids.shape[0], chunk):
    lg = last_logits(cfg, params, jnp.asarray(ids[s:s + chunk]), jnp.asarray(mask[s:s + chunk]))
    hits.append(np.asarray(jnp.argmax(lg, -1)) == np.asarray(targets[s:s + chunk]))
  hits = np.concatenate(hits) if hits else np.zeros(0, bool)
  return float(hits.mean()) if hits.size else float("nan"), hits


@functools.partial(jax.jit, static_argnums=0)
def _target_rows(cfg, params, ids, mask, loss_mask):
  lp = jax.nn.log_softmax(dec.apply(cfg, params, ids, mask)[0][:, :-1], -1)
  tgt = ids[:, 1:]
  nll = -jnp.take_along_axis(lp, tgt[..., None], -1)[..., 0]
  w = loss_mask[:, 1:]
  hit = (jnp.argmax(lp, -1) == tgt) | (w == 0)
  return jnp.all(hit, -1), jnp.sum(nll * w, -1) / jnp.maximum(jnp.sum(w, -1), 1.0)


def target_rows(cfg: dec.DecoderConfig, params: dict, data: dict[str, np.ndarray], *,
                chunk: int = 32) -> tuple[np.ndarray, np.ndarray]:
  """Per row: teacher-forced exact match of every ``loss_mask`` target (bool) and the
  mean target cross-entropy (nats). ``loss_mask[:, t]`` marks token ``t`` as a target."""
  hits, ces = [], []
  n = data["ids"].shape[0]
  for s in range(0, n, chunk):
    idx = np.arange(s, s + chunk) % n  # fixed chunk shape: one compile
    h, c = _target_rows(cfg, params, jnp.asarray(data["ids"][idx]), jnp.asarray(data["mask"][idx]),
                        jnp.asarray(data["loss_mask"][idx], jnp.float32))
    keep = min(chunk, n - s)
    hits.append(np.asarray(h)[:keep])
    ces.append(np.asarray(c)[:keep])
  return np.concatenate(hits), np.concatenate(ces)


def mean_ci(x: np.ndarray) -> tuple[float, float, float]:
  """Mean and normal-approximation 95% CI (1.96 standard errors); NaNs for n < 2."""
  x = np.asarray(x, np.float64).ravel()
  if x.size < 2:
    m = float(x.mean()) if x.size else float("nan")
    return m, float("nan"), float("nan")
  half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
  return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def seed_ci(x) -> tuple[float, float, float]:
  """Mean and Student-t 95% CI over seeds (few values: 1.96 standard errors would be too
  narrow); NaNs for fewer than 2 seeds."""
  from jaxlab.interp import knockout  # noqa: PLC0415 (scipy, only here)

  x = np.asarray(x, np.float64).ravel()
  if x.size < 2:
    return (float(x.mean()) if x.size else float("nan")), float("nan"), float("nan")
  return tuple(float(v) for v in knockout.mean_ci(x))
