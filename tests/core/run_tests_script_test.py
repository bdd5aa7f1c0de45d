"""`scripts/run_tests.py`: a native worker crash reruns the unfinished tests; nothing else does.

Each case runs the script on a toy suite in a temporary folder (2 xdist workers, loadfile),
where one test kills its own worker with SIGSEGV, on the first run only or on every run.
"""

import os
import subprocess
import sys

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SCRIPT = os.path.join(_ROOT, "scripts", "run_tests.py")
sys.path.insert(0, os.path.join(_ROOT, "scripts"))
import run_tests  # noqa: E402

_CRASHY = """
import os, signal
def test_a():
  assert True
def test_crash():
  mark = os.path.join(os.path.dirname(__file__), "crashed_once")
  if MODE == "always" or not os.path.exists(mark):
    open(mark, "w").close()
    os.kill(os.getpid(), signal.SIGSEGV)
def test_after():
  open(os.path.join(os.path.dirname(__file__), "after_ran"), "a").write("x")
"""


def _suite(tmp_path, mode: str, extra: str = "") -> str:
  suite = tmp_path / "suite"
  suite.mkdir()
  (suite / "crashy_test.py").write_text(f"MODE = {mode!r}\n" + _CRASHY)
  (suite / "other_test.py").write_text("def test_b():\n  assert 1 + 1 == 2\n" + extra)
  return str(suite)


def _run(tmp_path, suite: str):
  args = [suite, "-q", "-n", "2", "--dist", "loadfile", "--max-worker-restart", "0",
          "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c", os.devnull,
          "-o", "python_files=*_test.py"]
  env = {k: v for k, v in os.environ.items() if k != "JAXLAB_TEST_LEDGER"}
  return subprocess.run([sys.executable, _SCRIPT, *args], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=300)


def test_one_crash_reruns_the_crashed_and_unrun_tests_and_passes(tmp_path):
  suite = _suite(tmp_path, "once")
  out = _run(tmp_path, suite)
  assert out.returncode == 0, out.stdout + out.stderr
  assert "crashed natively while running" in out.stdout
  assert "crashy_test.py::test_crash" in out.stdout
  # test_after never ran in the first pass (its worker died first) and ran exactly once after
  with open(os.path.join(suite, "after_ran")) as f:
    assert f.read() == "x"


def test_a_second_crash_fails(tmp_path):
  out = _run(tmp_path, _suite(tmp_path, "always"))
  assert out.returncode != 0
  assert out.stdout.count("crashed while running") >= 2


def test_an_ordinary_failure_beside_a_crash_is_not_rerun(tmp_path):
  out = _run(tmp_path, _suite(tmp_path, "once", "def test_wrong():\n  assert 1 == 2\n"))
  assert out.returncode != 0
  assert "run once more" not in out.stdout


@pytest.mark.parametrize("outcomes, crashed, again", [
    (["passed a", "crashed b"], ["b"], ["b", "c"]),
    (["passed a", "crashed b", "failed c"], ["b"], []),
    (["passed a", "skipped c"], [], []),
    (["crashed b", "skipped c", "passed a"], ["b"], ["b"]),
])
def test_rerun_plan(outcomes, crashed, again):
  assert run_tests.rerun_plan(["a", "b", "c"], outcomes) == (crashed, again)
