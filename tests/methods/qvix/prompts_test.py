"""Byte-exact QVix prompts and reply parsing (hand-written expected strings)."""

import hashlib

import pytest

from jaxlab.core.errors import ConfigError, DataError
from jaxlab.methods.qvix import prompts
from jaxlab.methods.qvix.released_templates import TEMPLATES

# SHA-256 of each template's bytes in kai-wen-yang/QVix @ ed266a8 utils/prompt.py,
# computed from the released file itself (not from this package).
RELEASED_SHA256 = {
  "hand_v1": "d96aef6fd68fe72ba037cb39207b072c156282c86542511453e1141814eddbc6",
  "gptrewrite_v1": "ab0857895a61759e55fa09f76d0deedea6fa264b6792d8697900f959bfdaba15",
  "gptrewrite_v2": "156cd4c72bced20cdbebb7313abea368a8b87aa39e4f4452ec9c883d86936330",
  "gptrewrite_v3": "538eb888c70af325420ded4b35b1f479195f92c452efa9126906be44f941e582",
}
Q = prompts.scienceqa_question("Which of these states is farthest north?",
                               ["West Virginia", "Louisiana", "Arizona", "Oklahoma"])


def test_templates_are_the_released_bytes():
  assert set(TEMPLATES) == set(RELEASED_SHA256)
  for name, digest in RELEASED_SHA256.items():
    assert hashlib.sha256(TEMPLATES[name].encode()).hexdigest() == digest, name
  assert "Pre-question 2: xxxx \n" in TEMPLATES["hand_v1"]  # the released trailing space
  assert TEMPLATES["gptrewrite_v1"].endswith("Preliminary Question 4: xxx")


def test_question_string_and_options():
  assert Q == ("Which of these states is farthest north?\nOptions: West Virginia\nLouisiana\n"
               "Arizona\nOklahoma\n")
  # the release's split keeps the space after "Options:" on the first option
  assert prompts.options_of(Q) == [" West Virginia", "Louisiana", "Arizona", "Oklahoma"]
  with pytest.raises(DataError, match="Options"):
    prompts.options_of("no options here")


def test_prequestion_prompt_byte_exact():
  got = prompts.build_prequestion_prompt("hand_v1", Q)
  want = ("I need to answer the following main question about an image: Which of these states "
          "is farthest north?\nOptions: West Virginia\nLouisiana\nArizona\nOklahoma\n\n\n\n"
          "Your goal is to design 4 pre-questions. Pre-questions should focus on important "
          "contextual information in the image useful for answering the main question.\n\n"
          "Here are the rules you should follow when listing the sub-questions:\n"
          "Each pre-question should be short and easy to understand.\n"
          "Pre-questions should focus on context visual clues of the image.\n"
          "Pre-questions should provide clues to answer the main question.\n\n"
          "Format Example:\nPre-question 1: xxxx\nPre-question 2: xxxx \n"
          "Pre-question 3: xxxx\nPre-question 4: xxxx")
  assert got == want
  v2 = prompts.build_prequestion_prompt("gptrewrite_v2", Q)
  assert v2.startswith("I am tasked with addressing a primary inquiry regarding a specific "
                       "image: \nWhich of these states")
  with pytest.raises(ConfigError, match="unknown template"):
    prompts.build_prequestion_prompt("hand_v2", Q)


def test_lvlm_prompt_byte_exact():
  reply = "Pre-question 1: Where is each state?\nPre-question 2: What is north on the map?"
  assert prompts.build_lvlm_prompt(None, Q) == "Question: " + Q + "Answer:"
  assert prompts.build_lvlm_prompt(reply, Q) == reply + "\nQuestion: " + Q + "Answer:"
  noisy = "Sure! Here they are:\n* Pre-question 1: Where is each state?\nblah\n" \
          "pre-question 2) What is north on the map?"
  assert prompts.build_lvlm_prompt(noisy, Q, reply_mode="parsed") == \
      reply + "\nQuestion: " + Q + "Answer:"
  assert prompts.build_lvlm_prompt("no questions at all", Q, reply_mode="parsed") == \
      "Question: " + Q + "Answer:"
  instr = prompts.build_lvlm_prompt(None, Q, instruction=prompts.INSTRUCTION)
  assert instr == "Answer the following science question about an image.\nQuestion: " + Q + \
      "Answer:"


@pytest.mark.parametrize("reply,want", [
  ("Pre-question 1: Is it red?\nPre-question 2: How many?", ["Is it red?", "How many?"]),
  ("Preliminary Question 1: What shape?\nPreliminary Question 4: Where?",
   ["What shape?", "Where?"]),
  ("1. Is it red?\n2. How many?", []),                       # numbered list, no prefix
  ("", []),
  ("Pre-question 1:\nPre-question 2: xxxx\nPre-question 3: [Your Question Here]", []),
  ("**Pre-question 1:** Is it big?\n- PRE-QUESTION 2. Is it small?",
   ["** Is it big?", "Is it small?"]),
  ("Pre-question 1: Is it red? Pre-question 2: Is it blue?",  # two on one line: one item
   ["Is it red? Pre-question 2: Is it blue?"]),
  ("Pre-question 1: cut off mid", ["cut off mid"]),
])
def test_parse_malformed_replies(reply, want):
  assert prompts.parse_prequestions(reply) == want
