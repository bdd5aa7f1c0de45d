"""The released VQA normaliser on hand cases (expected values worked out by hand)."""

import pytest

from jaxlab.methods.qvix import scoring


@pytest.mark.parametrize("text,want", [
  ("The answer is Two.", "answer is 2"),                 # number word, article, final period
  ("none of them", "0 of them"),
  ("Ten apples, eleven pears", "10 apples eleven pears"),  # "eleven" is not in the map
  ("A cat and an apple", "cat and apple"),
  ("theory", "theory"),                                  # "the" only as a whole word
  ("salt-water", "salt water"),                          # '-' touches no space: becomes space
  ("well - known", "well known"),                        # '-' touches a space: deleted
  ("1,000 birds, yes", "1000 birds yes"),                # digit,digit: every mark deleted
  ("(a) red!", "red"),                                   # '(' and ')' -> ' ', article a
  ("3.5 m.", "3.5 m"),                                   # a period before a digit stays
  ("Dont go\tnow\n", "don't go now"),                     # contraction, tab/newline
  ("Im here", "im here"),                                # capitalised keys never match
  ("x." * 40, "x" * 32 + "x." * 8),                      # at most 32 periods removed
])
def test_normalize_hand_cases(text, want):
  assert scoring.normalize(text) == want


@pytest.mark.parametrize("answer,gt,want", [
  ("The answer is Two.", "two", True),
  ("It is 2 cats", "two", True),
  ("cats", "cat", False),                               # word boundary
  ("the cat.", "cat", True),
  ("a birdhouse", "bird", False),
  ("It has salty", "It has salty water", False),        # truncated answer
  ("It has salty water and sand", "It has salty water", True),
  ("West Virginia is north", "West Virginia", True),
  ("Virginia", "West Virginia", False),
  ("ice-cream", "ice cream", True),
  ("B", "sandpaper", False),
])
def test_vqa_match_hand_cases(answer, gt, want):
  assert scoring.vqa_match(answer, gt) is want


def test_scoring_variants():
  opts = ["red", "red circle", "blue"]
  assert scoring.option_matches("a red circle", opts) == 2   # the release's hallucination count
  assert scoring.option_letter("(B) red circle", 3) == 1
  assert scoring.option_letter("C. blue", 3) == 2
  assert scoring.option_letter("Blue", 3) is None            # a word, not a letter
  assert scoring.option_letter("D", 3) is None               # out of range
  assert scoring.closest_option("a red circle", opts) == 1   # longest matching option
  assert scoring.closest_option("blu", opts) == 2            # fuzzy
  assert scoring.score("B", "red circle", opts, "letter")
  assert not scoring.score("B", "red circle", opts, "whole")
  assert scoring.score("bleu", "blue", opts, "closest")
  assert scoring.closest_option("red circl", opts) == 0      # a whole-word match ("red") wins
  with pytest.raises(ValueError, match="scoring mode"):
    scoring.score("x", "red", opts, "exact")
