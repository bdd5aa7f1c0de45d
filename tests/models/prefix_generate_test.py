"""Shared-prefix generation equals plain generation on the concatenated prompts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.models import decoder
from jaxlab.models.generate import (common_prefix_len, generate, generate_with_prefix,
                                    prefill_suffix, prefix_cache)

import decoder_helpers as dit  # tests/models/conftest.py puts it on sys.path

GPT2 = dit.GPT2.replace(max_positions=64)  # learned positions: a wrong position id shows
CFGS = pytest.mark.parametrize("cfg", [dit.CFG, GPT2], ids=["llama", "gpt2"])
SUFFIX_LENS = (1, 4, 7, 3)  # different real lengths per row, so rows carry different padding


def _prompts(p=12, lens=SUFFIX_LENS, seed=5):
  """A shared prefix [p] and per-row suffix lists (tokens 1..40)."""
  rng = np.random.default_rng(seed)
  return rng.integers(1, 41, p).tolist(), [rng.integers(1, 41, n).tolist() for n in lens]


def _left_pad(rows):
  t = max(len(r) for r in rows)
  ids = np.zeros((len(rows), t), np.int32)
  mask = np.zeros((len(rows), t), np.int32)
  for i, r in enumerate(rows):
    ids[i, t - len(r):], mask[i, t - len(r):] = r, 1
  return jnp.asarray(ids), jnp.asarray(mask)


@CFGS
def test_first_token_logits_equal_full_prompt_forward(cfg):
  params = dit.random_params(cfg)
  prefix, suffixes = _prompts()
  full_ids, full_mask = _left_pad([prefix + s for s in suffixes])
  want, _ = decoder.jit_apply(cfg, params, full_ids, full_mask)
  s_ids, s_mask = _left_pad(suffixes)
  cache = prefix_cache(cfg, params, jnp.asarray(prefix))
  got, after = prefill_suffix(cfg, params, cache, s_ids, s_mask, len(prefix) + s_ids.shape[1] + 4)
  np.testing.assert_allclose(np.asarray(got[:, -1]), np.asarray(want[:, -1]), **dit.TOL)
  # every real suffix token's logits, not only the last one (a cached prefix sums attention in
  # another order: one logit of 287 differed by 1.1e-5 on an AVX-512 host; a wrong position or
  # mask moves logits by O(1))
  for i, s in enumerate(suffixes):
    np.testing.assert_allclose(np.asarray(got[i, -len(s):]), np.asarray(want[i, -len(s):]),
                               rtol=1e-4, atol=5e-5)
  assert int(after.index) == len(prefix) + s_ids.shape[1]
  np.testing.assert_array_equal(np.asarray(after.mask[:, :len(prefix)]), 1)


@CFGS
def test_greedy_tokens_equal_plain_generation(cfg):
  params = dit.random_params(cfg)
  prefix, suffixes = _prompts()
  full_ids, full_mask = _left_pad([prefix + s for s in suffixes])
  want = generate(cfg, params, full_ids, full_mask, max_new_tokens=16, stop_ids=())
  s_ids, s_mask = _left_pad(suffixes)
  got = generate_with_prefix(cfg, params, prefix, s_ids, s_mask, max_new_tokens=16,
                             stop_ids=())
  np.testing.assert_array_equal(np.asarray(got.tokens), np.asarray(want.tokens))
  # a precomputed prefix cache, reused, gives the same tokens
  cache = prefix_cache(cfg, params, jnp.asarray(prefix))
  again = generate_with_prefix(cfg, params, cache, s_ids, s_mask, max_new_tokens=16,
                               stop_ids=())
  np.testing.assert_array_equal(np.asarray(again.tokens), np.asarray(want.tokens))


def test_early_stop_equals_truncated_full_length_run():
  cfg, params = dit.CFG, dit.random_params(dit.CFG)
  prefix, suffixes = _prompts()
  s_ids, s_mask = _left_pad(suffixes)
  full = np.asarray(generate_with_prefix(cfg, params, prefix, s_ids, s_mask, max_new_tokens=16,
                                         stop_ids=()).tokens)
  stop = int(full[0, 3])  # a token row 0 emits early; other rows may emit it later or never
  got = generate_with_prefix(cfg, params, prefix, s_ids, s_mask, max_new_tokens=16,
                             stop_ids=(stop,))
  pad = cfg.pad_id or 0
  for row, toks, n, done in zip(full, np.asarray(got.tokens), np.asarray(got.lengths),
                                np.asarray(got.done)):
    hit = np.flatnonzero(row == stop)
    end = int(hit[0]) + 1 if hit.size else 16
    assert n == end and bool(done) == bool(hit.size)
    np.testing.assert_array_equal(toks[:end], row[:end])
    assert np.all(toks[end:] == pad)
  # and the plain path stops the same way
  full_ids, full_mask = _left_pad([prefix + s for s in suffixes])
  plain = generate(cfg, params, full_ids, full_mask, max_new_tokens=16, stop_ids=(stop,))
  np.testing.assert_array_equal(np.asarray(got.tokens), np.asarray(plain.tokens))
  np.testing.assert_array_equal(np.asarray(got.lengths), np.asarray(plain.lengths))


def test_every_row_stopping_ends_the_loop_early():
  """All rows stop at the first step: max_new_tokens far beyond what is generated."""
  cfg, params = dit.CFG, dit.random_params(dit.CFG)
  prefix, suffixes = _prompts()
  s_ids, s_mask = _left_pad(suffixes)
  first = np.asarray(generate_with_prefix(cfg, params, prefix, s_ids, s_mask, max_new_tokens=1,
                                          stop_ids=()).tokens[:, 0])
  got = generate_with_prefix(cfg, params, prefix, s_ids, s_mask, max_new_tokens=32,
                             stop_ids=tuple(set(first.tolist())))
  assert np.all(np.asarray(got.lengths) == 1) and np.all(np.asarray(got.done))
  np.testing.assert_array_equal(np.asarray(got.tokens[:, 0]), first)


def test_common_prefix_len_and_input_checks():
  assert common_prefix_len([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
  assert common_prefix_len([[1, 2, 3], [1, 2, 3, 4]]) == 2  # each row keeps >= 1 token
  assert common_prefix_len([[7, 1], [8, 1]]) == 0
  assert common_prefix_len([np.array([5, 6, 7])]) == 2
  cfg, params = dit.CFG, dit.random_params(dit.CFG)
  ids = jnp.ones((2, 3), jnp.int32)
  with pytest.raises(Exception, match="real token"):
    generate_with_prefix(cfg, params, [1, 2], ids, jnp.array([[1, 1, 1], [1, 1, 0]]),
                         max_new_tokens=2)
