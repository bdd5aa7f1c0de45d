"""Side effects of tuning: KL drift on held-out text and multiple-choice probes.

- ``heldout_windows``: token windows of English text that ships with the system
  (Debian ``fortunes`` when installed, else CPython's ``pydoc_data`` topics);
- ``kl_drift``: next-token KL(orig || tuned) summed over the vocabulary, averaged
  per token (the released ``evaluate_kl_divergence.py`` measure), plus NLLs;
- ``letter_accuracy``: multiple-choice accuracy read from the logits after the
  prefilled ``"The answer is ("`` (one forward per question, no decoding).
"""

import functools
import glob
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core import errors
from jaxlab.methods.spt import dialogue
from jaxlab.methods.spt.questions import LETTERS, MCQuestion
from jaxlab.models import decoder

FORTUNES = "/usr/share/games/fortunes"


def heldout_text(max_chars: int = 400_000) -> str:
  """English held-out text: fortunes (Debian) or pydoc topics (always present)."""
  files = sorted(f for f in glob.glob(os.path.join(FORTUNES, "*"))
                 if not f.endswith((".dat", ".u8")) and os.path.isfile(f))
  if files:
    parts = []
    for f in files:
      with open(f, encoding="utf-8", errors="replace") as fh:
        parts.append(fh.read().replace("\n%\n", "\n\n"))
    text = "".join(parts)
  else:
    from pydoc_data import topics  # pylint: disable=import-outside-toplevel
    text = "\n\n".join(topics.topics[k] for k in sorted(topics.topics))
  return text[-max_chars:]  # the tail: far from anything a user might tune on


def heldout_windows(tok: dialogue.ChatTokenizer, n: int, length: int = 128) -> np.ndarray:
  """``n`` consecutive ``length``-token windows of held-out text, int32 ``[n, length]``."""
  ids = tok.encode(heldout_text(max_chars=max(40_000, n * length * 6)))
  if len(ids) < n * length:
    raise errors.DataError(f"only {len(ids)} held-out tokens for {n} x {length}; lower n.")
  return np.asarray(ids[:n * length], np.int32).reshape(n, length)


@functools.partial(jax.jit, static_argnums=0)
def _kl_batch(cfg, p_orig, p_tuned, ids):
  mask = jnp.ones_like(ids)
  lo, _ = decoder.apply(cfg, p_orig, ids, mask)
  lt, _ = decoder.apply(cfg, p_tuned, ids, mask)
  lpo, lpt = jax.nn.log_softmax(lo[:, :-1], -1), jax.nn.log_softmax(lt[:, :-1], -1)
  kl = jnp.sum(jnp.exp(lpo) * (lpo - lpt), -1)  # [b, t-1]
  tgt = ids[:, 1:, None]
  nll_o = -jnp.take_along_axis(lpo, tgt, -1)[..., 0]
  nll_t = -jnp.take_along_axis(lpt, tgt, -1)[..., 0]
  return kl.mean(), nll_o.mean(), nll_t.mean()


def kl_drift(cfg: Any, p_orig: dict, p_tuned: dict, windows: np.ndarray,
             batch_size: int = 8) -> dict[str, float]:
  """Mean per-token KL(orig || tuned) and NLLs on held-out windows (fp32)."""
  rows = []
  batch_size = min(batch_size, len(windows))
  for i in range(0, len(windows) - batch_size + 1, batch_size):
    rows.append([float(v) for v in _kl_batch(cfg, p_orig, p_tuned,
                                             jnp.asarray(windows[i:i + batch_size]))])
  kl, nll_o, nll_t = np.mean(rows, 0)
  return {"kl": float(kl), "nll_orig": float(nll_o), "nll_tuned": float(nll_t)}


@functools.partial(jax.jit, static_argnums=0)
def _last_logits(cfg, params, ids, mask):
  logits, _ = decoder.apply(cfg, params, ids, mask)
  return logits[:, -1]


def letter_accuracy(cfg: Any, params: dict, tok: dialogue.ChatTokenizer,
                    qs: Sequence[MCQuestion], *, batch_size: int = 16,
                    bucket: int = 32) -> float:
  """Accuracy (%) of the argmax over option letters after ``"The answer is ("``."""
  prefill = "The answer is ("
  letter_ids = [tok.encode(prefill + c)[-1] for c in LETTERS[:4]]
  rows = [tok.encode(dialogue.prompt_text(tok, dialogue.question_messages(q), prefill))
          for q in qs]
  t = -(-max(len(r) for r in rows) // bucket) * bucket
  correct = []
  for i in range(0, len(rows), batch_size):
    chunk = rows[i:i + batch_size]
    n = len(chunk)
    chunk = chunk + [chunk[-1]] * (batch_size - n)
    arr = dialogue.pad_left(chunk, tok.pad_id, t)
    lg = np.asarray(_last_logits(cfg, params, jnp.asarray(arr["ids"]), jnp.asarray(arr["mask"])))
    for j, q in enumerate(qs[i:i + n]):
      k = len(q.options)
      correct.append(int(np.argmax(lg[j, letter_ids[:k]])) == q.answer_index)
  return 100.0 * float(np.mean(correct))
