"""Attention-mass summaries and head-map plots.

``attention_mass`` reports, per head, how much attention the last position puts
on named token spans (operands, operator, challenge sentence, ...).
"""

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core import plot
from jaxlab.models import decoder as dec


@functools.partial(jax.jit, static_argnums=0)
def last_pattern(cfg, params, ids, mask, intervene=None) -> jax.Array:
  """fp32 [L, b, H, s]: the last position's attention over keys."""
  _, acts = dec.apply(cfg, params, ids, mask, capture=dec.Capture(pattern=True, at="last"),
                      intervene=intervene)
  return acts["pattern"]


def attention_mass(
  cfg: dec.DecoderConfig, params: dict, ids: jax.Array, mask: jax.Array,
  spans: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
  """Mean attention mass from the last position onto each span, per head.

  Args:
    cfg, params: the model.
    ids, mask: [b, t] left-padded prompts.
    spans: name -> [b, t] bool masks of key positions (e.g. ``"operands"``).

  Returns:
    name -> [L, H] mean (over prompts) of the summed attention on the span.
  """
  pat = last_pattern(cfg, params, jnp.asarray(ids), jnp.asarray(mask))
  out = {}
  for name, span in spans.items():
    w = jnp.asarray(span, jnp.float32)[None, :, None, :]
    out[name] = np.asarray(jnp.mean(jnp.sum(pat * w, -1), 1))
  return out


def head_heatmap(
  path: pathlib.Path | str, scores: np.ndarray, *, title: str = "",
  label: str = "% change in metric",
) -> pathlib.Path:
  """[L, H] head map as a PNG (layers on y, heads on x), SPT's heatmap."""
  return plot.heatmap(path, np.asarray(scores), xlabel="head", ylabel="layer",
                      title=f"{title}\n{label}" if title else label)


def format_heads(heads) -> str:
  """``[(l, h), ...]`` -> ``"l.h, l.h"`` (zero-based, TransformerLens style)."""
  return ", ".join(f"{int(a)}.{int(b)}" for a, b in heads)
