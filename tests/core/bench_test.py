"""The benchmark discipline: load guard, JSON records, the Markdown table."""

import json

from jaxlab.core import bench


def test_recorder_marks_loaded_runs_and_writes_one_json_record(tmp_path, monkeypatch, capsys):
  loads = iter([(3.0, 1.0, 0.5), (0.4, 0.9, 0.5)])
  monkeypatch.setattr(bench.os, "getloadavg", lambda: next(loads))
  path = tmp_path / "b.json"
  rec = bench.Recorder("toy", {"n": 3}, json_path=str(path))
  assert rec.loaded
  assert "WARNING: 1-minute load 3.0 > 1.5" in capsys.readouterr().err
  r = rec.row("a vs b", jaxlab_s=0.5, baseline_s=2.0, goal=3.0, compile_s=1.25)
  assert r["ratio"] == 4.0 and r["met"] is True
  assert rec.row("c", jaxlab_s=1.0, baseline_s=2.0, goal=3.0)["met"] is False
  rec.finish()
  (line,) = path.read_text().splitlines()
  got = json.loads(line)
  assert got["loaded"] is True and got["load_start"]["load1"] == 3.0
  assert got["load_end"]["load1"] == 0.4 and got["args"] == {"n": 3}
  table = bench.markdown_table([got])
  assert "| toy | a vs b | 500.0 ms | 2.00 s | 4.00x | >= 3.0x met | 1.25 | 3.0 on" in table
  assert "**not met**" in table and "(LOADED)" in table


def test_quiet_run_is_not_marked_and_time_call_separates_compile(monkeypatch):
  monkeypatch.setattr(bench.os, "getloadavg", lambda: (0.2, 0.2, 0.2))
  assert not bench.Recorder("quiet").loaded
  calls = []
  t = bench.time_call(lambda: calls.append(1), reps=4, warmup=1)
  assert len(calls) == 1 + 1 + 4
  assert t["best_s"] <= t["steady_s"] and t["compile_s"] >= 0


def test_wait_for_quiet_returns_once_the_load_falls(monkeypatch):
  loads = iter([(2.5,) * 3, (2.0,) * 3, (1.2,) * 3, (1.2,) * 3])
  monkeypatch.setattr(bench.os, "getloadavg", lambda: next(loads))
  monkeypatch.setattr(bench.time, "sleep", lambda s: None)
  assert bench.wait_for_quiet(max_wait_s=60) == 1.2
