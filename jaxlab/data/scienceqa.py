"""ScienceQA (Lu et al., NeurIPS 2022) from a local copy, and a generated ScienceQA-format set.

``load(root=None)`` reads, image items only, in the first layout found:

1. the official repository layout: ``problems.json``, ``pid_splits.json`` and
   ``images/<split>/<pid>/image.png``;
2. QVix's saved layout: ``<split>_anns.json`` (image_path, question string, answer text,
   subject, grade);
3. the Hugging Face cache copy of ``derek-thomas/ScienceQA`` (loaded offline).

``root`` defaults to ``$JAXLAB_SCIENCEQA``, else ``~/.cache/jaxlab/scienceqa``. Nothing is
downloaded; without a copy, ``AssetMissingError`` names the expected location.

Every split has the columns ``id``, ``image`` (a ``datasets.Image``), ``question`` (the
released QVix string ``question + "\\nOptions: " + "\\n".join(choices) + "\\n"``),
``raw_question``, ``choices``, ``answer`` (the correct choice's text), ``answer_index``,
``subject``, ``grade`` and ``skill``.

``write_synthetic(root, n, seed)`` writes a small generated set in layout 1: 32x32 scenes of
2-3 coloured shapes with multiple-choice questions that need the image and one reasoning
step (counting, comparing sizes, left/right, the leftmost colour, naming a shape).
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from jaxlab.core.errors import AssetMissingError, DataError

ENV = "JAXLAB_SCIENCEQA"
HF_NAME = "derek-thomas/ScienceQA"
COLUMNS = ("id", "image", "question", "raw_question", "choices", "answer", "answer_index",
           "subject", "grade", "skill")


def default_root() -> pathlib.Path:
  """``$JAXLAB_SCIENCEQA`` or ``~/.cache/jaxlab/scienceqa``."""
  return pathlib.Path(os.environ.get(ENV) or
                      pathlib.Path("~/.cache/jaxlab/scienceqa").expanduser())


def question_string(question: str, choices: list[str]) -> str:
  """The string QVix builds for each item (the first option shares the "Options:" line)."""
  return f"{question}\nOptions: " + "\n".join(choices) + "\n"


def _row(pid, image, question, choices, answer_index, subject, grade, skill) -> dict:
  return {"id": str(pid), "image": image, "question": question_string(question, choices),
          "raw_question": question, "choices": list(choices), "answer": choices[answer_index],
          "answer_index": int(answer_index), "subject": subject, "grade": grade,
          "skill": skill or ""}


def _from_problems(root: pathlib.Path) -> dict[str, list[dict]]:
  problems = json.loads((root / "problems.json").read_text())
  splits = json.loads((root / "pid_splits.json").read_text())
  out = {}
  for split, pids in splits.items():
    if split.startswith("mini") or not pids:
      continue
    rows = []
    for pid in pids:
      p = problems[str(pid)]
      if not p.get("image"):
        continue  # QVix keeps image items only
      img = root / "images" / split / str(pid) / p["image"]
      if not img.exists():
        raise AssetMissingError(f"{img} is missing; the local ScienceQA copy at {root} is "
                                "incomplete (images/<split>/<pid>/image.png).")
      rows.append(_row(pid, str(img), p["question"], p["choices"], p["answer"],
                       p.get("subject", ""), p.get("grade", ""), p.get("skill", "")))
    out[split] = rows
  return out


def _from_anns(root: pathlib.Path) -> dict[str, list[dict]]:
  out = {}
  for f in sorted(root.glob("*_anns.json")):
    rows = []
    for i, a in enumerate(json.loads(f.read_text())):
      q = a["question"]
      raw, opts = q.split("\nOptions: ", 1)
      choices = opts[:-1].split("\n") if opts.endswith("\n") else opts.split("\n")
      if a["answer"] not in choices:
        raise DataError(f"{f}: item {i} has answer {a['answer']!r} outside its options.")
      path = pathlib.Path(a["image_path"])
      path = path if path.is_absolute() else root / path
      rows.append(_row(i, str(path), raw, choices, choices.index(a["answer"]),
                       a.get("subject", ""), a.get("grade", ""), a.get("skill", "")))
    out[f.name[:-len("_anns.json")]] = rows
  return out


def _from_hf_cache():
  import datasets  # noqa: PLC0415

  os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
  try:
    dd = datasets.load_dataset(HF_NAME)
  except Exception:  # not cached (datasets raises many kinds offline)
    return None
  out = {}
  for split, ds in dd.items():
    ds = ds.filter(lambda r: r["image"] is not None)
    out[split] = ds.map(lambda r, i: _row(f"{split}-{i}", r["image"], r["question"],
                                          r["choices"], r["answer"], r["subject"],
                                          r["grade"], r.get("skill")),
                        with_indices=True, remove_columns=ds.column_names)
  return datasets.DatasetDict(out)


def _to_datasetdict(splits: dict[str, list[dict]]):
  import datasets  # noqa: PLC0415

  feats = datasets.Features({
    "id": datasets.Value("string"), "image": datasets.Image(),
    "question": datasets.Value("string"), "raw_question": datasets.Value("string"),
    "choices": datasets.Sequence(datasets.Value("string")), "answer": datasets.Value("string"),
    "answer_index": datasets.Value("int32"), "subject": datasets.Value("string"),
    "grade": datasets.Value("string"), "skill": datasets.Value("string")})
  return datasets.DatasetDict({
    s: datasets.Dataset.from_dict({c: [r[c] for r in rows] for c in COLUMNS}, features=feats)
    for s, rows in splits.items()})


def load(root: str | os.PathLike | None = None):
  """ScienceQA image items as a ``datasets.DatasetDict`` (see the module docstring)."""
  base = pathlib.Path(root).expanduser() if root is not None else default_root()
  if (base / "problems.json").exists() and (base / "pid_splits.json").exists():
    return _to_datasetdict(_from_problems(base))
  if base.is_dir() and any(base.glob("*_anns.json")):
    return _to_datasetdict(_from_anns(base))
  if root is None:
    dd = _from_hf_cache()
    if dd is not None:
      return dd
  raise AssetMissingError(
    f"ScienceQA not found: expected problems.json + pid_splits.json + images/ (the official "
    f"layout) or <split>_anns.json under {base}, or {HF_NAME} in the Hugging Face cache; "
    f"put a copy there or set ${ENV} (jaxlab never downloads).")


# ---------------------------------------------------------------------- generated set

SCENE_SHAPES = ("circle", "square", "triangle")
SCENE_COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
SCENE_RGB = np.array([(230, 40, 40), (40, 200, 60), (50, 80, 235), (240, 220, 40),
                      (170, 60, 220), (250, 140, 30)], np.float32)
QTYPES = ("count", "larger", "left_right", "leftmost_colour", "shape_of")
_SLOTS_X = (6.0, 16.0, 26.0)
_RADII = (3.2, 5.4)


def render_scene(objs: list[dict], size: int = 32, noise: float = 6.0,
                 rng: np.random.Generator | None = None) -> np.ndarray:
  """uint8 [size, size, 3]: objects {shape, colour, large, x, y} on a dark background."""
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
  img = np.full((size, size, 3), 20.0, np.float32)
  for o in objs:
    r = _RADII[o["large"]]
    u, v = xx - o["x"], yy - o["y"]
    if o["shape"] == "circle":
      m = u * u + v * v <= r * r
    elif o["shape"] == "square":
      m = (np.abs(u) <= r * 0.85) & (np.abs(v) <= r * 0.85)
    else:  # upward triangle
      m = (v <= r * 0.8) & (v >= -r) & (np.abs(u) <= (v + r) * 0.6)
    img[m] = SCENE_RGB[SCENE_COLOURS.index(o["colour"])]
  if rng is not None and noise:
    img = img + rng.normal(0, noise, img.shape)
  return np.clip(img, 0, 255).astype(np.uint8)


def _question(qtype: str, objs: list[dict], rng) -> tuple[str, list[str], int]:
  """(question, choices, answer index) for one scene; objs are sorted left to right."""
  if qtype == "count":
    n = len(objs)
    choices = [str(k) for k in range(1, 5)]
    return "How many shapes are in the picture?", choices, choices.index(str(n))
  if qtype == "leftmost_colour":
    right = objs[0]["colour"]
    others = [c for c in SCENE_COLOURS if c != right]
    choices = [right] + [str(c) for c in rng.choice(others, 2, replace=False)]
    rng.shuffle(choices)
    return "What colour is the shape on the far left?", choices, choices.index(right)
  pairs = [(i, j) for i in range(len(objs)) for j in range(len(objs)) if i != j
           and (qtype != "larger" or objs[i]["large"] != objs[j]["large"])]
  a, b = pairs[int(rng.integers(0, len(pairs)))]
  oa, ob = objs[a], objs[b]
  if qtype == "left_right":
    return (f"Is the {oa['colour']} shape to the left or to the right of the {ob['colour']} "
            "shape?", ["left", "right"], int(a > b))
  if qtype == "larger":
    choices = [oa["colour"], ob["colour"]]
    return (f"Which shape is larger, the {oa['colour']} one or the {ob['colour']} one?",
            choices, int(ob["large"] > oa["large"]))
  choices = list(SCENE_SHAPES)
  return f"What shape is the {oa['colour']} object?", choices, choices.index(oa["shape"])


def synthetic_items(n: int, seed: int = 0, qtypes: tuple[str, ...] = QTYPES) -> list[dict]:
  """``n`` generated items: {pid, image uint8 [32, 32, 3], question, choices, answer, skill,
  objects}. A pure function of the seed; question types cycle through ``qtypes``."""
  rng = np.random.default_rng(seed)
  items = []
  for i in range(n):
    qtype = qtypes[i % len(qtypes)]
    k = int(rng.integers(2, 4))
    slots = sorted(rng.choice(3, k, replace=False))
    colours = rng.choice(len(SCENE_COLOURS), k, replace=False)
    large = rng.integers(0, 2, k)
    if len(set(large.tolist())) == 1:
      large[rng.integers(0, k)] ^= 1  # at least one size difference (for "larger")
    objs = [{"shape": SCENE_SHAPES[int(rng.integers(0, 3))],
             "colour": SCENE_COLOURS[int(c)], "large": int(s),
             "x": _SLOTS_X[int(x)] + rng.uniform(-1, 1), "y": 16.0 + rng.uniform(-5, 5)}
            for x, c, s in zip(slots, colours, large)]
    q, choices, ans = _question(qtype, objs, rng)
    items.append({"pid": f"s{seed}-{i}", "image": render_scene(objs, rng=rng), "question": q,
                  "choices": choices, "answer": ans, "skill": qtype, "objects": objs})
  return items


def write_synthetic(root: str | os.PathLike, n: int = 12, seed: int = 0,
                    text_only: int = 2) -> pathlib.Path:
  """Writes ``n`` generated image items (+ ``text_only`` image-less ones) in layout 1."""
  from PIL import Image  # noqa: PLC0415

  root = pathlib.Path(root)
  problems, pids = {}, []
  for it in synthetic_items(n, seed):
    d = root / "images" / "test" / it["pid"]
    d.mkdir(parents=True, exist_ok=True)
    Image.fromarray(it["image"]).save(d / "image.png")
    problems[it["pid"]] = {"question": it["question"], "choices": it["choices"],
                           "answer": it["answer"], "image": "image.png", "split": "test",
                           "subject": "natural science", "grade": f"grade{2 + len(pids) % 8}",
                           "skill": it["skill"], "hint": ""}
    pids.append(it["pid"])
  for j in range(text_only):
    pid = f"t{seed}-{j}"
    problems[pid] = {"question": "Which word is a noun?", "choices": ["run", "dog"],
                     "answer": 1, "image": None, "split": "test", "subject": "language science",
                     "grade": "grade3", "skill": "text", "hint": ""}
    pids.append(pid)
  (root / "problems.json").write_text(json.dumps(problems, indent=1))
  (root / "pid_splits.json").write_text(json.dumps({"test": pids}))
  return root
