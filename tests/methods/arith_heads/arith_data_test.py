"""Arithmetic dataset builder: single-token answers, null-operator counterfactuals."""

import numpy as np
import pytest

from jaxlab.core.errors import DataError
from jaxlab.methods.arith_heads import corpus, data
from jaxlab.methods.arith_heads.smoke import WordTokenizer


def test_operand_sets_match_spec():
  assert len(data.operand_pairs("+")) == 36 and len(data.operand_pairs("-")) == 45
  assert all(a * b <= 9 for a, b in data.operand_pairs("*"))


@pytest.mark.parametrize("template", ["equation", "statement", "qa"])
def test_counterfactual_differs_only_at_the_query_operator(template):
  tok = WordTokenizer()
  s = data.build(tok, op="+", template=template, shots=4, draws=2, seed=3)
  assert len(s) == 72 and s.ids_r.shape == s.ids_c.shape == s.mask.shape
  diff = (s.ids_r != s.ids_c)
  assert (diff.sum(1) == 1).all() and (diff == s.operator).all()
  assert (s.operands.sum(1) == 2).all()
  # Operand positions hold the operand digits; target is the answer digit's token.
  for i in range(0, len(s), 17):
    a, b = s.meta[i]["a"], s.meta[i]["b"]
    assert list(s.ids_r[i][s.operands[i]]) == [s.digit_ids[a], s.digit_ids[b]]
    assert s.target[i] == s.digit_ids[a + b] and s.answer[i] == a + b
  # Left padding: the last column is always a real token.
  assert (s.mask[:, -1] == 1).all()
  # Shot draws are seeded and exclude the query pair.
  again = data.build(tok, op="+", template=template, shots=4, draws=2, seed=3)
  np.testing.assert_array_equal(again.ids_r, s.ids_r)
  text = data.render(template, "+", 1, 2)
  assert text + "3\n" not in tok.decode(s.ids_r[0][s.mask[0] == 1])


def test_unequal_counterfactual_length_raises():
  with pytest.raises(DataError, match="token count"):
    data.build(WordTokenizer(), op="/", template="statement", shots=0)


def test_take_trims_and_concat_repads():
  tok = WordTokenizer()
  a = data.build(tok, op="+", template="equation", shots=0)
  b = data.build(tok, op="-", template="qa", shots=0)
  both = data.concat([a, b])
  assert len(both) == 81 and both.ids_r.shape[1] == max(a.ids_r.shape[1], b.ids_r.shape[1])
  sub = both.take([0, 1])
  assert sub.ids_r.shape[1] == a.ids_r.shape[1]


def test_sft_examples_and_corpora():
  tok = WordTokenizer()
  ids, mask, loss_mask, answers = corpus.sft_examples(tok, ops=("+",))
  assert ids.shape[0] == 36 and (ids[:, -1] == answers).all() and loss_mask[:, -2].all()
  text, tmask = corpus.general_text(tok, n=4, length=32)
  assert text.shape == (4, 32) and tmask.sum(1).min() >= 32
  pids, pmask, targets = corpus.probes(tok)
  assert pids.shape[0] == len(corpus.PROBES) == targets.shape[0]


def test_multidigit_items_disjoint_and_answers_correct():
  from jaxlab.methods.arith_heads import smoke  # noqa: PLC0415
  tok = smoke.WordTokenizer()
  train = corpus.multidigit_items(300, seed=0)
  test = corpus.multidigit_items(100, seed=1, exclude=set(train))
  assert len(set(train)) == 300 and not set(train) & set(test)
  assert {op for op, _, _ in train} == {"+", "-", "*", "/"}
  assert all(a % b == 0 for op, a, b in train if op == "/")
  assert all(a >= b for op, a, b in train if op == "-")
  enc = corpus.encode_items(tok, [("*", 12, 7), ("-", 40, 3)])
  tail = [tok.decode(r[m > 0]) for r, m in zip(enc["ids"], enc["loss_mask"])]
  assert tail == ["84", "37"]  # the targets are exactly the answer digits
