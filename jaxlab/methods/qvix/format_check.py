"""Pre-question format compliance of the offline LLM, zero-shot vs few-shot.

``python -m jaxlab.methods.qvix.format_check --n 48 --shots 0 2 3 --out runs/qvix-fmt.json``

Items: ``standin.eval_items(n, eval_seed)`` (the generator ``qvix-bundled`` evaluates on).
Replies: SmolLM2-135M-Instruct with its chat template, greedy, through ``llm.prequestions``
and the same disk cache as ``qvix-bundled`` (``<--cache>/qvix_llm``; default
~/.cache/jaxlab, as ``BundledConfig.cache``). Per shot count: replies with >= 1 parsed
pre-question (strict and lenient parsing), the mean count, whether the pre-questions are
about the item (they mention a colour or shape word of the item's question or options) or
copy a demonstration (they mention a demo-only noun, or repeat a demo's pre-question
verbatim), replies that echo the template's "xxxx" placeholders, and example replies.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re

import numpy as np

from jaxlab.data import cache_root, scienceqa
from jaxlab.methods.qvix import llm, standin
from jaxlab.methods.qvix.prompts import PREQUESTION_DEMOS, parse_prequestions

ITEM_WORDS = (*scienceqa.SCENE_COLOURS, *scienceqa.SCENE_SHAPES, "shape", "shapes", "object",
              "objects")
DEMO_WORDS = ("bird", "birds", "fence", "umbrella", "woman", "dog", "car", "apple", "melon",
              "fruit")


def _words(text: str) -> set[str]:
  return set(re.findall(r"[a-z]+", text.lower()))


def compliance(items: list[dict], replies: list[str], mode: str = "strict") -> dict:
  """Parse statistics of ``replies`` (one per item) under parse ``mode``."""
  parsed = [parse_prequestions(r, mode) for r in replies]
  demo_lines = {q for _, r in PREQUESTION_DEMOS for q in parse_prequestions(r)}
  ok = [i for i, ps in enumerate(parsed) if ps]
  about = copy = usable = 0
  for i in ok:
    said = _words(" ".join(parsed[i]))
    own = _words(items[i]["question"]) & set(ITEM_WORDS)
    about += bool(said & own)
    copy += bool(said & set(DEMO_WORDS))
    usable += bool(said & own) and not said & set(DEMO_WORDS)
  return {"n": len(items), "n_parsed_ge1": len(ok),
          "mean_count": float(np.mean([len(ps) for ps in parsed])),
          "about_item_frac": about / len(ok) if ok else None,
          "demo_copy_frac": copy / len(ok) if ok else None,
          "n_about_item_no_demo_noun": usable,  # of all n items
          "n_with_verbatim_demo_line": sum(any(q in demo_lines for q in ps) for ps in parsed),
          "n_placeholder_replies": sum("xxxx" in r for r in replies)}


def main(argv=None) -> dict:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--n", type=int, default=48)
  ap.add_argument("--eval-seed", type=int, default=10_000)
  ap.add_argument("--shots", type=int, nargs="+", default=[0, 2, 3])
  ap.add_argument("--shot-style", default="chat")
  ap.add_argument("--template", default="hand_v1")
  ap.add_argument("--max-new-tokens", type=int, default=64)
  ap.add_argument("--batch-size", type=int, default=8)
  ap.add_argument("--cache", default="", help="as BundledConfig.cache (default $JAXLAB_CACHE or ~/.cache/jaxlab)")
  ap.add_argument("--out", default="")
  a = ap.parse_args(argv)
  from jaxlab.models.loaders import load_model  # noqa: PLC0415

  cfg, params, tok = load_model("smollm2-135m-instruct")
  dec = llm.Decoding(max_new_tokens=a.max_new_tokens)
  gen = llm.decoder_llm(cfg, params, tok, dec)
  cache = pathlib.Path(a.cache).expanduser() if a.cache else cache_root()
  items = standin.eval_items(a.n, a.eval_seed)
  res = {}
  for k in a.shots:
    replies = llm.prequestions(items, a.template, gen, model_id="smollm2-135m-instruct",
                               decoding=dec, cache_dir=cache / "qvix_llm",
                               batch_size=a.batch_size, shots=k, shot_style=a.shot_style)
    res[f"shots{k}"] = {"prompt_id": llm.prompt_id(a.template, k, a.shot_style),
                        "strict": compliance(items, replies, "strict"),
                        "lenient": compliance(items, replies, "lenient"),
                        "examples": [{"question": items[i]["question"], "reply": replies[i]}
                                     for i in range(5)]}
    print(json.dumps({f"shots{k}": {m: res[f"shots{k}"][m] for m in ("strict", "lenient")}}),
          flush=True)
    if a.out:
      pathlib.Path(a.out).parent.mkdir(parents=True, exist_ok=True)
      pathlib.Path(a.out).write_text(json.dumps(res, indent=1))
  return res


if __name__ == "__main__":
  main()
