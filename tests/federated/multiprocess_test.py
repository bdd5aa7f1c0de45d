"""`jaxlab run fed-baselines-mnist --smoke` as 2 processes x 2 CPU devices (jax.distributed,
gloo) equals 1 process x 4 devices; the stepped engine refuses several processes.

The pattern of tests/core/distributed_test.py: real subprocesses, a free port, one
shared --out (orbax checkpoints need one directory; only process 0 writes files).
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from jaxlab import cli

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV = {**os.environ, "JAXLAB_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1",
       "HF_DATASETS_OFFLINE": "1"}


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _jaxlab(*args):
  return [sys.executable, "-m", "jaxlab.cli", "run", "fed-baselines-mnist", "--smoke", *args]


def _two_processes(out, *extra, timeout=400):
  port = _free_port()
  procs = [subprocess.Popen(_jaxlab("--cpu-devices", "2", "--coordinator", f"127.0.0.1:{port}",
                                    "--num-processes", "2", "--process-id", str(i),
                                    "--out", str(out), *extra),
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True) for i in range(2)]
  try:
    outs = [p.communicate(timeout=timeout) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  return [(p.returncode, o, e) for p, (o, e) in zip(procs, outs)]


def _losses(out):
  rows = [json.loads(line) for line in (out / "fedavg_a0.5" / "metrics.jsonl").read_text()
          .splitlines()]
  return [r["loss"] for r in rows], [r["accuracy"] for r in rows]


@pytest.mark.slow
def test_two_processes_equal_one_process(tmp_path):
  one = subprocess.run(_jaxlab("--cpu-devices", "4", "--set", "engine=vmap", "--out",
                               str(tmp_path / "one")), cwd=ROOT, env=ENV, capture_output=True,
                       text=True, timeout=400)
  assert one.returncode == 0, one.stderr[-2000:]
  res = _two_processes(tmp_path / "two")
  for rc, _, err in res:
    assert rc == 0, err[-2000:]
  ref = json.loads((tmp_path / "one" / "result.json").read_text())
  got = json.loads((tmp_path / "two" / "result.json").read_text())
  assert ref["device_count"] == got["device_count"] == 4
  assert got["processes"] == 2 and got["engine"] == "vmap"   # auto picks vmap for 2 processes
  for name, r in ref["runs"].items():
    for k in ("final_accuracy", "best_accuracy", "client_acc_p10", "waste"):
      np.testing.assert_allclose(got["runs"][name][k], r[k], rtol=1e-5, err_msg=k)
  loss_1, acc_1 = _losses(tmp_path / "one")
  loss_2, acc_2 = _losses(tmp_path / "two")
  np.testing.assert_allclose(loss_2, loss_1, rtol=1e-5)
  np.testing.assert_allclose(acc_2, acc_1, rtol=1e-6)
  assert len(loss_1) == 2 and np.isfinite(loss_1).all()
  assert (tmp_path / "two" / "fedavg_a0.5" / "checkpoints" / "2").exists()


@pytest.mark.slow
def test_stepped_engine_refuses_two_processes(tmp_path):
  res = _two_processes(tmp_path / "out", "--set", "engine=stepped", timeout=300)
  for rc, _, err in res:
    assert rc == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("jaxlab: error: the stepped engine runs in one process only")
    assert "vmapped engine" in last


def test_bad_process_id_is_one_line(capsys):
  rc = cli.main(["run", "fed-baselines-mnist", "--smoke", "--coordinator", "127.0.0.1:1",
                 "--num-processes", "2", "--process-id", "2"])
  err = capsys.readouterr().err.strip().splitlines()
  assert rc == 2 and len(err) == 1 and "--process-id 2 with --num-processes 2" in err[0]
  rc = cli.main(["run", "fed-baselines-mnist", "--smoke", "--coordinator", "127.0.0.1:1"])
  err = capsys.readouterr().err.strip().splitlines()
  assert rc == 2 and len(err) == 1 and "--num-processes N and --process-id I" in err[0]
  # nobody at the coordinator: one line (JAX itself would abort the process)
  rc = cli.main(["run", "fed-baselines-mnist", "--smoke", "--coordinator",
                 f"127.0.0.1:{_free_port()}", "--num-processes", "2", "--process-id", "1",
                 "--init-timeout", "1"])
  err = capsys.readouterr().err.strip().splitlines()
  assert rc == 2 and len(err) == 1 and "no coordinator answered" in err[0]
