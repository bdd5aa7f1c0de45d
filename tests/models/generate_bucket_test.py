"""Shape buckets in generation (pad_to / batch_to): same logits and tokens, fewer compiles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.models import decoder, lvlm
from jaxlab.models import generate as gen
from jaxlab.models.loaders.llava_export import tiny_config

import decoder_helpers as dit  # tests/models/conftest.py puts it on sys.path

GPT2 = dit.GPT2.replace(max_positions=64)  # learned positions: a shifted position id shows
CFGS = pytest.mark.parametrize("cfg", [dit.CFG, GPT2], ids=["llama", "gpt2"])
LENS = (3, 9, 14, 6)  # real lengths per row: t = 14 -> bucket 32
N = 16


def _rows(lens=LENS, seed=3, lo=1, hi=41):
  rng = np.random.default_rng(seed)
  return [rng.integers(lo, hi, n).tolist() for n in lens]


def _left_pad(rows):
  from jaxlab.models.tokenizer import pad_left
  return pad_left(rows, 0)


def _same_tokens(a: gen.Generation, b: gen.Generation):
  for x, y in zip(a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_bucket_len_and_pad_batch():
  assert [gen.bucket_len(n, 32) for n in (1, 32, 33, 64)] == [32, 32, 64, 64]
  assert gen.bucket_len(13, None) == gen.bucket_len(13, 1) == 13
  ids, mask = _left_pad([[5, 6], [7, 8, 9]])
  pids, pmask = gen.pad_batch(ids, mask, 4, 6, pad_id=0)
  np.testing.assert_array_equal(pids, [[0, 0, 0, 0, 5, 6], [0, 0, 0, 7, 8, 9],
                                       [0, 0, 0, 7, 8, 9], [0, 0, 0, 7, 8, 9]])
  np.testing.assert_array_equal(pmask.sum(1), [2, 3, 3, 3])
  # position ids of the real tokens do not move
  pos = lambda m: np.asarray(decoder.ops.positions_from_mask(jnp.asarray(m)))
  np.testing.assert_array_equal(pos(pmask)[:2, -3:][mask[:, -3:] == 1],
                                pos(mask)[mask == 1])
  # a learned position table caps the bucket (max_positions 32, 16 new tokens)
  assert gen._padded_len(dit.GPT2, 14, 32, 16) == 16
  assert gen._padded_len(dit.CFG, 14, 32, 16) == 32


@CFGS
def test_plain_path_first_logits_and_greedy_tokens_unchanged(cfg):
  params = dit.random_params(cfg)
  ids, mask = _left_pad(_rows())
  b, t = ids.shape
  t_to = gen._padded_len(cfg, t, 32, N)
  assert t_to == 32
  want, _, _ = decoder.jit_prefill(cfg, params, jnp.asarray(ids), jnp.asarray(mask), t + N)
  pids, pmask = gen.pad_batch(ids, mask, 8, t_to, cfg.pad_id or 0)
  got, _, _ = decoder.jit_prefill(cfg, params, jnp.asarray(pids), jnp.asarray(pmask), t_to + N)
  np.testing.assert_allclose(np.asarray(got[:b, -1]), np.asarray(want[:, -1]), **dit.TOL)
  exact = gen.generate(cfg, params, ids, mask, max_new_tokens=N, stop_ids=(), pad_to=None)
  bucketed = gen.generate(cfg, params, ids, mask, max_new_tokens=N, stop_ids=(), pad_to=32,
                          batch_to=8)
  assert bucketed.tokens.shape == (b, N)
  _same_tokens(bucketed, exact)
  # the default is bucketed (pad_to=32) and gives the same tokens too
  _same_tokens(gen.generate(cfg, params, ids, mask, max_new_tokens=N, stop_ids=()), exact)


@CFGS
def test_prefix_path_first_logits_and_greedy_tokens_unchanged(cfg):
  params = dit.random_params(cfg)
  prefix = _rows((12,), seed=9)[0]
  s_ids, s_mask = _left_pad(_rows((1, 4, 7, 3)))
  b, t = s_ids.shape
  cache = gen.prefix_cache(cfg, params, jnp.asarray(prefix))
  p = len(prefix)
  t_to = gen._padded_len(cfg, t, 32, p + N)
  assert t_to > t
  want, _ = gen.prefill_suffix(cfg, params, cache, jnp.asarray(s_ids), jnp.asarray(s_mask),
                               p + t + N)
  pids, pmask = gen.pad_batch(s_ids, s_mask, 8, t_to, cfg.pad_id or 0)
  got, _ = gen.prefill_suffix(cfg, params, cache, jnp.asarray(pids), jnp.asarray(pmask),
                              p + t_to + N)
  np.testing.assert_allclose(np.asarray(got[:b, -1]), np.asarray(want[:, -1]), **dit.TOL)
  # a prefix cache left-padded to 32 slots (masked) gives the same logits too
  padded = gen.prefix_cache(cfg, params, jnp.asarray(prefix), 32)
  assert padded.k.shape[2] == 32 and int(padded.mask.sum()) == p
  t_p = gen._padded_len(cfg, t, 32, 32 + N)
  pids, pmask = gen.pad_batch(s_ids, s_mask, 8, t_p, cfg.pad_id or 0)
  got, _ = gen.prefill_suffix(cfg, params, padded, jnp.asarray(pids), jnp.asarray(pmask),
                              32 + t_p + N)
  np.testing.assert_allclose(np.asarray(got[:b, -1]), np.asarray(want[:, -1]), **dit.TOL)
  exact = gen.generate_with_prefix(cfg, params, cache, s_ids, s_mask, max_new_tokens=N,
                                   stop_ids=(), pad_to=None)
  bucketed = gen.generate_with_prefix(cfg, params, cache, s_ids, s_mask, max_new_tokens=N,
                                      stop_ids=(), pad_to=32, batch_to=8)
  _same_tokens(bucketed, exact)
  # raw prefix ids: the prefix is prefilled here, left-padded to the bucket
  _same_tokens(gen.generate_with_prefix(cfg, params, prefix, s_ids, s_mask, max_new_tokens=N,
                                        stop_ids=(), pad_to=32), exact)
  # and the plain path on the concatenated prompts agrees
  full_ids, full_mask = _left_pad([prefix + r for r in _rows((1, 4, 7, 3))])
  plain = gen.generate(cfg, params, full_ids, full_mask, max_new_tokens=N, stop_ids=())
  np.testing.assert_array_equal(np.asarray(bucketed.tokens), np.asarray(plain.tokens))


def test_intervention_is_padded_with_the_batch():
  cfg, params = dit.CFG, dit.random_params(dit.CFG)
  ids, mask = _left_pad(_rows())
  b, t = ids.shape
  rng = np.random.default_rng(4)
  iv = decoder.Intervention(  # a per-row index, per-row embeddings and a per-row MLP write
    z_pos=jnp.asarray([t - 1, t - 2, t - 1, t - 3]),
    embed_value=jnp.asarray(rng.standard_normal((b, t, cfg.d_model)), jnp.float32),
    mlp_out_mask=jnp.asarray([0, 1, 0], jnp.float32),
    mlp_out_value=jnp.asarray(rng.standard_normal((cfg.n_layers, b, cfg.d_model)), jnp.float32))
  kw = dict(max_new_tokens=N, stop_ids=(), intervene=iv)
  exact = gen.generate(cfg, params, ids, mask, pad_to=None, **kw)
  _same_tokens(gen.generate(cfg, params, ids, mask, pad_to=32, batch_to=8, **kw), exact)
  assert not np.array_equal(np.asarray(exact.tokens), np.asarray(
    gen.generate(cfg, params, ids, mask, max_new_tokens=N, stop_ids=()).tokens))


def _tiny_lvlm():
  img = 99
  cfg = tiny_config(100, img, d_model=32)
  params = lvlm.init_params(cfg, jax.random.key(0))
  params["decoder"] = dit.random_params(cfg.text, seed=1)  # larger weights: no greedy ties
  return cfg, params, img


def test_lvlm_greedy_tokens_unchanged_on_a_padded_batch_with_images():
  cfg, params, img = _tiny_lvlm()
  n_tok = cfg.num_image_tokens
  txt = _rows((5, 2, 3, 1, 4, 2), seed=7, lo=3, hi=img)
  rows = [[1] + txt[0],  # text only
          [1, img] + txt[1],  # one image
          [1] + txt[2] + [img] + txt[3] + [img] + txt[4]]  # two images, the last row
  rows = [lvlm.expand_image_tokens(r, img, n_tok) for r in rows]
  ids, mask = _left_pad(rows)
  pixels = np.random.default_rng(2).standard_normal((3, 32, 32, 3)).astype(np.float32)
  kw = dict(max_new_tokens=N, stop_ids=())
  exact = lvlm.generate(cfg, params, ids, mask, pixels, pad_to=None, **kw)
  bucketed = lvlm.generate(cfg, params, ids, mask, pixels, pad_to=32, batch_to=8, **kw)
  assert ids.shape[1] % 32 and bucketed.tokens.shape == (3, N)
  _same_tokens(bucketed, exact)
  _same_tokens(lvlm.generate(cfg, params, ids, mask, pixels, **kw), exact)  # default on


def _count(monkeypatch, module, name):
  calls = []
  real = getattr(module, name)
  monkeypatch.setattr(module, name, lambda *a, **k: calls.append(1) or real(*a, **k))
  return calls


def test_one_compile_for_three_lengths_in_one_bucket(monkeypatch):
  # a config no other test uses, so the jit caches start cold; traces counted through a
  # Python side effect (a function called only while tracing the jitted generation)
  cfg = dit.CFG.replace(rope_theta=123.0)
  params = dit.random_params(cfg)
  batches = [_left_pad(_rows(lens, seed=s)) for s, lens in
             enumerate([(3, 5, 5, 2, 1, 4, 2, 3), (11, 2, 7, 9, 1, 3, 3, 4), (17, 6, 2)])]
  assert len({ids.shape for ids, _ in batches}) == 3
  prefills = _count(monkeypatch, gen.decoder, "prefill")
  for ids, mask in batches:
    gen.generate(cfg, params, ids, mask, max_new_tokens=4, stop_ids=(), batch_to=8)
  assert len(prefills) == 1
  for ids, mask in batches:  # the exact shapes: one compile per shape
    gen.generate(cfg, params, ids, mask, max_new_tokens=4, stop_ids=(), pad_to=None)
  assert len(prefills) == 4
  # the prefix path: one compile of the suffix prefill + decode
  grows = _count(monkeypatch, gen, "_grow_cache")
  cache = gen.prefix_cache(cfg, params, jnp.arange(1, 33))
  for ids, mask in batches:
    gen.generate_with_prefix(cfg, params, cache, ids, mask, max_new_tokens=4, stop_ids=(),
                             batch_to=8)
  assert len(grows) == 1


def test_decoder_llm_buckets_keep_replies_and_share_programs(monkeypatch):
  """QVix's writer: bucketed suffixes and a left-padded shared prefix give the exact-shape
  replies, and two batches whose common prefixes (and suffixes) differ by a few tokens run
  one compiled prefix prefill and one suffix program."""
  from jaxlab.methods.qvix import bundled, llm, prompts

  cfg, params, tok = bundled._decoder("tiny-random")  # as tests/methods/qvix/prefix_llm_test
  cfg = cfg.replace(norm_eps=cfg.norm_eps * 1.01)  # a config of its own: cold jit caches
  rng = np.random.default_rng(0)
  params = jax.tree_util.tree_map_with_path(
    lambda p, x: np.float32(0.3) * rng.standard_normal(x.shape, np.float32)
    + ("norm_scale" in jax.tree_util.keystr(p)), params)
  tok.chat_template = ("{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
                       "{% if add_generation_prompt %}<assistant>{% endif %}")
  dec = llm.Decoding(max_new_tokens=8)
  b1 = [prompts.build_prequestion_input("hand_v1", q, 1) for q in
        ("Is the ball red?", "Is the big cube blue?", "Is it round?")]
  b2 = [prompts.build_prequestion_input("hand_v1", q, 1) for q in
        ("Which shape is larger?", "How many red squares are there?", "Where is it?")]
  rows = lambda b: [tok.encode(tok.chat(p), False) for p in b]
  n1, n2 = gen.common_prefix_len(rows(b1)), gen.common_prefix_len(rows(b2))
  t1, t2 = (max(map(len, rows(b))) - n for b, n in ((b1, n1), (b2, n2)))
  assert n1 != n2 and -(-n1 // 32) == -(-n2 // 32)  # two prefix lengths, one bucket
  assert t1 != t2 and -(-t1 // 32) == -(-t2 // 32)  # two suffix lengths, one bucket
  prefills = _count(monkeypatch, gen.decoder, "prefill")
  grows = _count(monkeypatch, gen, "_grow_cache")
  fast = llm.decoder_llm(cfg, params, tok, dec)
  got = fast(b1) + fast(b2)
  assert (len(prefills), len(grows)) == (1, 1)
  exact = llm.decoder_llm(cfg, params, tok, dec, pad_to=None)
  assert exact(b1) + exact(b2) == got
  assert (len(prefills), len(grows)) == (3, 3)  # the exact shapes: one program per shape
  plain = llm.decoder_llm(cfg, params, tok, dec, min_prefix=None, pad_to=None)
  assert plain(b1) + plain(b2) == got
