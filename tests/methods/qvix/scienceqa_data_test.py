"""ScienceQA loader (local layouts, missing-asset error) and the generated set's invariants."""

import json
import re

import numpy as np
import pytest

from jaxlab.core.errors import AssetMissingError
from jaxlab.data import scienceqa
from jaxlab.data.loading import load


def test_load_generated_set_through_jaxlab_data_load(tmp_path, monkeypatch):
  scienceqa.write_synthetic(tmp_path, n=7, seed=3, text_only=2)
  monkeypatch.setenv("JAXLAB_SCIENCEQA", str(tmp_path))
  ds = load("scienceqa")["test"]
  assert len(ds) == 7                                     # the 2 text-only items are dropped
  problems = json.loads((tmp_path / "problems.json").read_text())
  for row in ds:
    p = problems[row["id"]]
    assert row["question"] == p["question"] + "\nOptions: " + "\n".join(p["choices"]) + "\n"
    assert row["answer"] == p["choices"][p["answer"]]
    assert np.asarray(row["image"]).shape == (32, 32, 3)


def test_qvix_anns_layout(tmp_path):
  items = scienceqa.synthetic_items(2, seed=1)
  from PIL import Image

  anns = []
  for i, it in enumerate(items):
    Image.fromarray(it["image"]).save(tmp_path / f"{i}.png")
    anns.append({"image_path": f"{i}.png", "answer": it["choices"][it["answer"]],
                 "question": scienceqa.question_string(it["question"], it["choices"]),
                 "subject": "natural science", "grade": "grade4"})
  (tmp_path / "test_anns.json").write_text(json.dumps(anns))
  ds = scienceqa.load(tmp_path)["test"]
  assert [r["answer_index"] for r in ds] == [it["answer"] for it in items]
  np.testing.assert_array_equal(np.asarray(ds[1]["image"]), items[1]["image"])


def test_missing_copy_names_the_location(tmp_path):
  with pytest.raises(AssetMissingError, match=str(tmp_path / "nowhere")) as e:
    scienceqa.load(tmp_path / "nowhere")
  assert "\n" not in str(e.value) and "JAXLAB_SCIENCEQA" in str(e.value)


def test_generated_questions_follow_from_the_scene():
  items = scienceqa.synthetic_items(60, seed=0)
  assert {it["skill"] for it in items} == set(scienceqa.QTYPES)
  a = scienceqa.synthetic_items(60, seed=0)
  assert all(np.array_equal(x["image"], y["image"]) for x, y in zip(items, a))  # seeded
  for it in items:
    objs, ans = it["objects"], it["choices"][it["answer"]]
    by_colour = {o["colour"]: o for o in objs}
    q = it["question"]
    if it["skill"] == "count":
      assert ans == str(len(objs))
    elif it["skill"] == "leftmost_colour":
      assert ans == min(objs, key=lambda o: o["x"])["colour"]
    elif it["skill"] == "left_right":
      c1, c2 = re.findall(r"the (\w+) shape", q)
      assert ans == ("left" if by_colour[c1]["x"] < by_colour[c2]["x"] else "right")
    elif it["skill"] == "larger":
      c1, c2 = it["choices"]
      assert by_colour[ans]["large"] == 1 and by_colour[c1]["large"] != by_colour[c2]["large"]
    else:
      c = q.split("the ")[1].split(" object")[0]
      assert ans == by_colour[c]["shape"]
    for o in objs:  # the object's colour is painted at its centre (noise std 6)
      px = it["image"][int(o["y"]), int(o["x"])].astype(float)
      rgb = scienceqa.SCENE_RGB[scienceqa.SCENE_COLOURS.index(o["colour"])]
      assert np.abs(px - rgb).max() < 30
