"""The released VQA answer normaliser and QVix's whole-string scorer, plus two variants.

``normalize`` follows the VQAEval class QVix ships (its ``utils/tools.py``), including its
quirks, re-implemented from the rules:

1. newlines and tabs become spaces; strip;
2. punctuation: each of 21 characters is deleted when the ORIGINAL text has it next to a
   space (either side) or has a digit-comma-digit anywhere, else replaced by a space;
3. periods not followed by a digit are removed, at most 32 of them (the released regex's
   digit look-behind is malformed, and ``re.UNICODE`` lands in ``sub``'s count slot);
4. lower-case, split on whitespace, number words none/zero..ten -> digits, drop a/an/the;
5. contraction table (only lower-case keys can match), re-join with single spaces.

``vqa_match(answer, gt)``: the normalised ground truth occurs in the normalised answer with
regex word boundaries (``\\b`` + escaped gt + ``\\b``).
"""

from __future__ import annotations

import difflib
import re

PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@",
         "`", ",", "?", "!")
_COMMA_DIGITS = re.compile(r"(\d)(,)(\d)")
_PERIOD = re.compile(r"\.(?!\d)")
NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
           "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = frozenset({"a", "an", "the"})
# The VQA evaluation's contraction table (as shipped), written as "key=value" pairs.
_CONTRACTIONS = """aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't
couldn'tve=couldn't've couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't
hadnt=hadn't hadnt've=hadn't've hadn'tve=hadn't've hasnt=hasn't havent=haven't hed=he'd
hed've=he'd've he'dve=he'd've hes=he's howd=how'd howll=how'll hows=how's Id've=I'd've
I'dve=I'd've Im=I'm Ive=I've isnt=isn't itd=it'd itd've=it'd've it'dve=it'd've itll=it'll
let's=let's maam=ma'am mightnt=mightn't mightnt've=mightn't've mightn'tve=mightn't've
mightve=might've mustnt=mustn't mustve=must've neednt=needn't notve=not've oclock=o'clock
oughtnt=oughtn't ow's'at='ow's'at 'ows'at='ow's'at 'ow'sat='ow's'at shant=shan't
shed've=she'd've she'dve=she'd've she's=she's shouldve=should've shouldnt=shouldn't
shouldnt've=shouldn't've shouldn'tve=shouldn't've somebody'd=somebodyd
somebodyd've=somebody'd've somebody'dve=somebody'd've somebodyll=somebody'll
somebodys=somebody's someoned=someone'd someoned've=someone'd've someone'dve=someone'd've
someonell=someone'll someones=someone's somethingd=something'd somethingd've=something'd've
something'dve=something'd've somethingll=something'll thats=that's thered=there'd
thered've=there'd've there'dve=there'd've therere=there're theres=there's theyd=they'd
theyd've=they'd've they'dve=they'd've theyll=they'll theyre=they're theyve=they've
twas='twas wasnt=wasn't wed've=we'd've we'dve=we'd've weve=we've werent=weren't
whatll=what'll whatre=what're whats=what's whatve=what've whens=when's whered=where'd
wheres=where's whereve=where've whod=who'd whod've=who'd've who'dve=who'd've wholl=who'll
whos=who's whove=who've whyll=why'll whyre=why're whys=why's wont=won't wouldve=would've
wouldnt=wouldn't wouldnt've=wouldn't've wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll
y'allll=y'all'll yall'd've=y'all'd've y'alld've=y'all'd've y'all'dve=y'all'd've youd=you'd
youd've=you'd've you'dve=you'd've youll=you'll youre=you're youve=you've"""
CONTRACTIONS = dict(p.split("=", 1) for p in _CONTRACTIONS.split())


def strip_punctuation(text: str) -> str:
  """Rules 2-3 (the released ``processPunctuation``)."""
  out = text
  delete = _COMMA_DIGITS.search(text) is not None
  for p in PUNCT:
    gone = delete or (p + " " in text) or (" " + p in text)  # tested on the input text
    out = out.replace(p, "" if gone else " ")
  return _PERIOD.sub("", out, count=32)


def words(text: str) -> str:
  """Rules 4-5 (the released ``processDigitArticle``)."""
  toks = [NUMBERS.get(w, w) for w in text.lower().split()]
  toks = [w for w in toks if w not in ARTICLES]
  return " ".join(CONTRACTIONS.get(w, w) for w in toks)


def normalize(text: str) -> str:
  """The full normaliser applied to answers and ground truths alike."""
  text = text.replace("\n", " ").replace("\t", " ").strip()
  return words(strip_punctuation(text))


def vqa_match(answer: str, gt: str) -> bool:
  """QVix's scorer: the normalised gt occurs in the normalised answer on word boundaries."""
  return re.search(r"\b" + re.escape(normalize(gt)) + r"\b", normalize(answer)) is not None


def option_matches(answer: str, options: list[str]) -> int:
  """How many options match the answer (the release's unreported "hallucination" count)."""
  return sum(vqa_match(answer, o) for o in options)


_LETTER = re.compile(r"^\s*\(?([A-Ha-h])\)?(?:[.:)\s]|$)")


def option_letter(answer: str, n_options: int) -> int | None:
  """The option index named by a leading letter ("B", "(b)", "C." ...), else None."""
  m = _LETTER.match(answer)
  if not m:
    return None
  k = ord(m.group(1).upper()) - ord("A")
  return k if k < n_options else None


def closest_option(answer: str, options: list[str]) -> int:
  """The option whose normalised text is most similar to the normalised answer.

  An option that matches by ``vqa_match`` wins (the longest such one, so "red circle"
  beats "red"); otherwise the highest ``difflib`` ratio, ties to the first option.
  """
  hits = [i for i, o in enumerate(options) if vqa_match(answer, o)]
  if hits:
    return max(hits, key=lambda i: len(normalize(options[i])))
  a = normalize(answer)
  ratios = [difflib.SequenceMatcher(None, a, normalize(o)).ratio() for o in options]
  return max(range(len(options)), key=lambda i: (ratios[i], -i))


def score(answer: str, gt: str, options: list[str], mode: str = "whole") -> bool:
  """Correctness under a scoring variant: "whole" (the release), "letter" or "closest"."""
  if mode == "whole":
    return vqa_match(answer, gt)
  target = options.index(gt)
  if mode == "letter":
    k = option_letter(answer, len(options))
    return k == target if k is not None else vqa_match(answer, gt)
  if mode == "closest":
    return closest_option(answer, options) == target
  raise ValueError(f"scoring mode {mode!r}; use 'whole', 'letter' or 'closest'.")
