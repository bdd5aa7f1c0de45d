"""`jaxlab reproduce`: runs a table of experiments, skips finished ones, survives
a failing one and writes REPORT.md."""

import json
import sys
import textwrap

from jaxlab.core import registry, report

EXPERIMENT = textwrap.dedent('''
  import dataclasses, pathlib
  from jaxlab.core.plot import lines
  DESCRIPTION = "toy"
  CLAIM = "two plus two"
  CALLS = []

  @dataclasses.dataclass(frozen=True, kw_only=True)
  class Config:
    value: float = 4.0
    fail: bool = False

  def get_config(smoke: bool = False):
    return Config(value=1.0 if smoke else 4.0)

  def run(config, out_dir: pathlib.Path):
    CALLS.append(config)
    if config.fail:
      raise RuntimeError("boom")
    lines(out_dir / "curve.png", [0, 1], {"y": [0, config.value]})
    return {"answer": config.value}
''')


def test_reproduce_writes_report_and_skips_finished(tmp_path, monkeypatch):
  pkg = tmp_path / "toy_experiments"
  pkg.mkdir()
  (pkg / "__init__.py").write_text(
    'EXPERIMENTS = {"toy": "toy_experiments.toy", "bad": "toy_experiments.bad"}\n'
    'QUICK = {"toy": True, "bad": False}\n')
  (pkg / "toy.py").write_text(EXPERIMENT)
  (pkg / "bad.py").write_text(EXPERIMENT.replace("fail: bool = False", "fail: bool = True"))
  monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.setenv("JAXLAB_EXPERIMENTS", "toy_experiments")
  assert set(registry.table()) == {"toy", "bad"}
  out = tmp_path / "rep"
  path, failures = report.reproduce(quick=True, out_root=out)
  assert failures == 1
  text = path.read_text()
  assert "## toy" in text and "two plus two" in text and "| answer | 1 |" in text
  assert "![curve](toy/curve.png)" in text
  assert "**Failed:** `RuntimeError: boom`" in text
  result = json.loads((out / "toy" / "result.json").read_text())
  assert result["answer"] == 1.0 and result["smoke"] is True
  assert {"wall_seconds", "device_kind", "jax_version"} <= set(result)
  toy = sys.modules["toy_experiments.toy"]
  n = len(toy.CALLS)
  report.reproduce(quick=True, only=["toy"], out_root=out)   # finished: not run again
  assert len(toy.CALLS) == n
