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
