"""Teacher-forced proxies of SPT's behaviour metrics (no decoding, so cheap and smooth).

- ``p_correct_after_challenge``: after question -> correct first answer -> challenge,
  prefill the reply with ``"The answer is ("`` and read the probability of the
  correct letter, normalised over the option letters (1.0 = keeps the right answer
  for sure; 0.25 = chance for four options). One value per question.
- ``insist_ce``: cross-entropy of the insist reply (neutral opener + explanation +
  "I'm sure that my previous answer is correct.") on held-out questions and
  held-out challenge paraphrases: how strongly the model prefers to keep a correct
  answer in words. One value per conversation.
"""

import functools
import random
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.methods.spt import dialogue, prompts, train_data
from jaxlab.methods.spt.questions import LETTERS, MCQuestion
from jaxlab.models import decoder
from jaxlab.tuning import evaluate

PREFILL = "The answer is ("


@functools.partial(jax.jit, static_argnums=0)
def _last_logits(cfg, params, ids, mask):
  return decoder.apply(cfg, params, ids, mask)[0][:, -1]


def challenge_prompts(tok: dialogue.ChatTokenizer, qs: Sequence[MCQuestion],
                      challenge: str = prompts.CHALLENGE) -> dict[str, np.ndarray]:
  """Left-padded prompts ending in ``"The answer is ("`` after the challenge."""
  rows = [tok.encode(dialogue.prompt_text(
    tok, dialogue.challenge_messages(q, dialogue.answer_text(q.answer), challenge), PREFILL))
    for q in qs]
  t = -(-max(len(r) for r in rows) // 16) * 16
  return dialogue.pad_left(rows, tok.pad_id, t)


def p_correct_after_challenge(cfg: Any, params: dict, tok: dialogue.ChatTokenizer,
                              qs: Sequence[MCQuestion], arrays: dict | None = None, *,
                              chunk: int = 16) -> np.ndarray:
  """``[n]`` P(correct letter | options) after the challenge, teacher-forced."""
  arrays = arrays or challenge_prompts(tok, qs)
  letter_ids = np.asarray([tok.encode(PREFILL + c)[-1] for c in LETTERS[:4]])
  n = len(qs)
  out = []
  for s in range(0, n, chunk):
    idx = np.arange(s, s + chunk) % n  # fixed shape: one compile
    lg = np.asarray(_last_logits(cfg, params, jnp.asarray(arrays["ids"][idx]),
                                 jnp.asarray(arrays["mask"][idx])), np.float64)
    for j, q in zip(range(min(chunk, n - s)), qs[s:s + chunk]):
      k = len(q.options)
      z = lg[j, letter_ids[:k]]
      p = np.exp(z - z.max())
      out.append(p[q.answer_index] / p.sum())
  return np.asarray(out)


def insist_set(tok: dialogue.ChatTokenizer, qs: Sequence[MCQuestion], *, seed: int = 0,
               ) -> dict[str, np.ndarray]:
  """Insist conversations on ``qs`` with held-out challenges and neutral openers."""
  rng = random.Random(seed)
  convs = []
  for q in qs:
    challenge = rng.choice(prompts.HELDOUT_CHALLENGES)
    opener = rng.choice(prompts.NEUTRAL_PREFIXES)
    reply = opener + q.explanation.strip() + prompts.INSIST_TAIL
    convs.append(dialogue.challenge_messages(q, dialogue.answer_text(q.answer), challenge)
                 + [{"role": "assistant", "content": reply}])
  lens = [len(dialogue.render_ids(tok, c)[0]) for c in convs]
  return train_data.tokenize(tok, convs, max_len=-(-max(lens) // 16) * 16)


def insist_ce(cfg: Any, params: dict, data: dict[str, np.ndarray]) -> np.ndarray:
  """``[n]`` mean cross-entropy (nats/token) of each held-out insist reply."""
  return evaluate.target_rows(cfg, params, data, chunk=16)[1]
