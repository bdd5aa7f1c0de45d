"""`scripts/spt_seeds.py`: pools decoded seeds of an arm over run folders (synthetic runs)."""

import json
import os
import sys

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
  os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(_ROOT, "scripts"))
import spt_seeds  # noqa: E402


def _run(root, name, *, first_seed, lanes, best, truth, conf, kls):
  """A run folder as ``spt-smollm2`` writes it: config, arm stage, one folder per lane."""
  run = root / name
  (run / "stages").mkdir(parents=True)
  (run / "config.json").write_text(json.dumps({"config": {
    "first_seed": first_seed, "seed_protocol": "grid", "lane_chunk": 1}}))
  stage = {"best_lr": best, "lanes": lanes, "eval": {"truthfulness": truth[0],
                                                     "confidence": conf[0]}}
  if len(truth) > 1:
    stage.update(truthfulness_seeds=truth, confidence_seeds=conf)
  (run / "stages" / "arm_spt.json").write_text(json.dumps(stage))
  (run / "stages" / "base.json").write_text(json.dumps({"eval": {
    "truthfulness": 14.0, "truthfulness_ci": [9.0, 19.0]}}))
  for i, kl in enumerate(kls):
    d = run / "arms" / "spt" / f"{i}-abcd{i}"
    d.mkdir(parents=True)
    (d / "rows.json").write_text(json.dumps([{"kl": kl}]))
  return run


def test_pools_seeds_over_runs_with_each_lanes_kl(tmp_path, capsys):
  # run a: lr grid (1e-3, 3e-3) x seeds 0-1, best 3e-3, both seeds decoded; lane folders
  # are in grid order, so seed 0 of 3e-3 is folder 2 and seed 1 folder 3.
  a = _run(tmp_path, "a", first_seed=0, lanes=[[1e-3, 0], [1e-3, 1], [3e-3, 0], [3e-3, 1]],
           best=3e-3, truth=[60.0, 70.0], conf=[50.0, 40.0], kls=[0.9, 0.8, 0.01, 0.03])
  b = _run(tmp_path, "b", first_seed=2, lanes=[[3e-3, 2]], best=3e-3, truth=[80.0],
           conf=[45.0], kls=[0.02])
  label, arm, seeds = spt_seeds.pool(f"heads=spt:{a},{b}")
  assert (label, arm) == ("heads", "spt")
  assert [(s["seed"], s["truthfulness"], s["kl"]) for s in seeds] == [
    (0, 60.0, 0.01), (1, 70.0, 0.03), (2, 80.0, 0.02)]
  out = tmp_path / "v.png"
  spt_seeds.main(["--arm", f"heads=spt:{a},{b}", "--out", str(out)])
  table = capsys.readouterr().out
  assert "| heads (0.003) | 0, 1, 2 | 60.0 / 70.0 / 80.0 | **70.0 [" in table
  assert out.exists()


def test_refuses_a_seed_twice_a_missing_run_and_a_bad_spec(tmp_path):
  a = _run(tmp_path, "a", first_seed=0, lanes=[[1e-3, 0]], best=1e-3, truth=[60.0],
           conf=[50.0], kls=[0.01])
  with pytest.raises(SystemExit, match=r"seed\(s\) \[0\] in two runs"):
    spt_seeds.pool(f"x=spt:{a},{a}")
  with pytest.raises(SystemExit, match="is missing"):
    spt_seeds.pool(f"x=spt:{tmp_path / 'nope'}")
  with pytest.raises(SystemExit, match="LABEL=ARM:RUN"):
    spt_seeds.pool("no-arm-here")
