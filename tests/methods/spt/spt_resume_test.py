"""An SPT study killed in the middle of an arm resumes from the arm's checkpoints and ends
with the same numbers as an uninterrupted run (tiny random decoder, SmolLM2's tokenizer)."""

import dataclasses
import json

import pytest

from jaxlab.core import errors
from jaxlab.core.metrics import to_python
from jaxlab.methods.spt import pipeline, side_effects
from jaxlab.models.loaders import gguf_file
from jaxlab.tuning import loop

pytest.importorskip("gguf")


class _Killed(Exception):
  pass


def _config():
  try:
    gguf_file.smollm2_path()
  except errors.AssetMissingError as e:
    pytest.skip(f"SmolLM2 asset absent (tokenizer source): {e}")
  from experiments.spt import smollm2
  # two lanes (lr 1e-3, 1e-2) in two chunks of one, 4 steps, a checkpoint every 2 steps
  return dataclasses.replace(smollm2.get_config(smoke=True), arms=("spt",), steps=4,
                             ckpt_every=2, lane_chunk=1, generate=False)


def _counting(monkeypatch, kill_at=None):
  """Wraps ``fit`` and ``proxy_row``: counts the steps each chunk trains and the proxy
  evaluations; with ``kill_at=(chunk, step)`` raises right after that step."""
  real_fit, real_row = loop.fit, pipeline.proxy_row
  calls = {"steps": [], "rows": 0}

  def fit(*a, on_step, **kw):
    chunk = len(calls["steps"])
    calls["steps"].append(0)

    def step(done, metrics):
      on_step(done, metrics)
      calls["steps"][chunk] += 1
      if kill_at == (chunk, done):
        raise _Killed

    return real_fit(*a, on_step=step, **kw)

  def row(*a, **kw):
    calls["rows"] += 1
    return real_row(*a, **kw)

  monkeypatch.setattr(loop, "fit", fit)
  monkeypatch.setattr(pipeline, "proxy_row", row)
  return calls


def _arm(sc, out_dir):
  model = pipeline.load_model(sc.model)
  cfg, _, tok = model
  sets = pipeline.question_sets(sc)
  heads = [(0, 0), (0, 1), (1, 2), (1, 3)][:sc.k]
  return pipeline._arm_stage(model, sets, sc, "spt", heads, pipeline.training_data(tok, sets, sc),
                             side_effects.heldout_windows(tok, sc.n_kl),
                             pipeline.evaluation_data(tok, sets, sc), out_dir)


@pytest.mark.slow
def test_killed_mid_arm_resumes_to_the_uninterrupted_numbers(tmp_path, monkeypatch):
  sc = _config()
  whole = _arm(sc, tmp_path / "whole")
  with monkeypatch.context() as m:
    _counting(m, kill_at=(1, 3))   # chunk 0 done (proxies saved), chunk 1 killed after step 3
    with pytest.raises(_Killed):
      _arm(sc, tmp_path / "cut")
  calls = _counting(monkeypatch)
  resumed = _arm(sc, tmp_path / "cut")
  # chunk 0 restores its final step; chunk 1 restores step 2 and trains steps 3 and 4
  assert calls["steps"] == [0, 2]
  assert calls["rows"] == 1            # chunk 0's proxies come from its rows.json
  assert json.dumps(to_python(resumed)) == json.dumps(to_python(whole))   # NaN-safe equality
  assert resumed["loss_first_last"][1][1] != resumed["loss_first_last"][1][0]
  chunks = sorted(p.name for p in (tmp_path / "cut" / "arms" / "spt").iterdir())
  assert len(chunks) == 2 and chunks[0].startswith("0-") and chunks[1].startswith("1-")
