"""Two processes x 4 CPU devices (jax.distributed, gloo) == one process x 8."""

import json
import pathlib
import socket
import subprocess
import sys

import numpy as np

WORKER = pathlib.Path(__file__).with_name("distributed_worker.py")


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _parse(out):
  return json.loads(out.strip().splitlines()[-1])


def test_two_processes_match_one_process():
  one = subprocess.run([sys.executable, str(WORKER), "1", "0", "0", "8"], capture_output=True,
                       text=True, timeout=300)
  assert one.returncode == 0, one.stderr[-2000:]
  port = _free_port()
  procs = [subprocess.Popen([sys.executable, str(WORKER), "2", str(i), str(port), "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-2000:]
  ref = _parse(one.stdout)
  assert ref["devices"] == 8
  for out, _ in outs:
    got = _parse(out)
    assert got["devices"] == 8
    np.testing.assert_allclose(got["losses"], ref["losses"], rtol=1e-5)
  assert ref["losses"][-1] < ref["losses"][0]
