"""A run that fails before writing anything leaves no config.json; one that wrote data keeps it."""

import json
import types

import pytest

from jaxlab.core import experiment
from jaxlab.core.errors import ConfigError


def _fake(monkeypatch, run):
  cfg = types.SimpleNamespace()
  monkeypatch.setattr(experiment, "resolve_config",
                      lambda name, smoke, overrides: (types.SimpleNamespace(run=run), cfg))
  monkeypatch.setattr(experiment.config_lib, "to_dict", lambda c: {"a": 1})


def test_failed_start_leaves_nothing_and_the_same_command_then_runs(tmp_path, monkeypatch):
  out = tmp_path / "run"

  def bad(cfg, out_dir):
    (out_dir / "metrics.jsonl").touch()       # an empty writer file, as a MetricsWriter makes
    (out_dir / "checkpoints").mkdir()
    raise ConfigError("100 clients need 1,000 images")

  _fake(monkeypatch, bad)
  with pytest.raises(ConfigError, match="100 clients"):
    experiment.run("x", out_dir=out)
  assert not out.exists()
  _fake(monkeypatch, lambda cfg, out_dir: {"acc": 0.5})
  assert experiment.run("x", out_dir=out)["acc"] == 0.5   # no "already holds a run"
  assert json.loads((out / "config.json").read_text())["config"] == {"a": 1}


def test_a_failed_run_that_wrote_data_or_a_resumed_run_keeps_everything(tmp_path, monkeypatch):
  out = tmp_path / "run"

  def partial(cfg, out_dir):
    (out_dir / "metrics.jsonl").write_text('{"step": 1}\n')
    raise RuntimeError("killed at step 2")

  _fake(monkeypatch, partial)
  with pytest.raises(RuntimeError):
    experiment.run("x", out_dir=out)
  assert (out / "config.json").exists() and (out / "metrics.jsonl").read_text()

  def bad(cfg, out_dir):
    raise ConfigError("bad")

  resumed = tmp_path / "resumed"
  resumed.mkdir()
  (resumed / "config.json").write_text(json.dumps({"experiment": "x", "smoke": False,
                                                   "config": {"a": 1}}))
  _fake(monkeypatch, bad)
  with pytest.raises(ConfigError):
    experiment.run("x", out_dir=resumed, resume=True)
  assert (resumed / "config.json").exists()              # an existing run is never removed


def test_undo_refuses_a_directory_with_data(tmp_path):
  (tmp_path / "config.json").write_text("{}")
  (tmp_path / "sub").mkdir()
  (tmp_path / "sub" / "x.npy").write_bytes(b"1")
  assert not experiment.undo_empty_start(tmp_path)
  assert (tmp_path / "sub" / "x.npy").exists() and (tmp_path / "config.json").exists()
