"""Run pytest; after a native crash of a worker, run once more what did not pass.

Usage: `python scripts/run_tests.py <pytest arguments>` (what `scripts/test.sh` calls).

jaxlib's CPU backend has crashed an xdist worker now and then (a segmentation fault while
reading the compile cache or while compiling, three times in about thirty full runs on record;
the same test then passes alone and in its file). With `--max-worker-restart 0` the run stops
that worker's share at once, so one such crash fails CI for reasons unrelated to the change.
So: if, and only if, every failure of the first run is a worker crash, the tests that did not
pass or skip (the crashed one and those that never ran) run once more in fresh workers, with
the same options (the positional paths are replaced by the node ids). Any ordinary failure,
a second crash, or a crash with nothing left to run fails the run. What happened is printed,
so a crash is never silent.
"""

import os
import subprocess
import sys
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))


def _pytest(args: list[str], ledger: str) -> int:
  # a pytest-xdist worker's own variables (when this runs inside a test) would make the child's
  # controller look like a worker to the ledger
  env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
  env["JAXLAB_TEST_LEDGER"] = ledger
  env["PYTHONPATH"] = os.pathsep.join(p for p in (_HERE, env.get("PYTHONPATH")) if p)
  cmd = [sys.executable, "-m", "pytest", "-p", "pytest_ledger", *args]
  return subprocess.call(cmd, env=env)


def _read(path: str) -> list[str]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [line.rstrip("\n") for line in f if line.strip()]


def rerun_plan(collected: list[str], outcomes: list[str]) -> tuple[list[str], list[str]]:
  """(crashed node ids, node ids to run again); nothing to run again unless only crashes failed."""
  ended = [line.split(" ", 1) for line in outcomes]
  crashed = [n for o, n in ended if o == "crashed"]
  if not crashed or any(o == "failed" for o, _ in ended):
    return crashed, []
  done = {n for o, n in ended if o in ("passed", "skipped")}
  return crashed, [n for n in collected if n not in done]


def main(args: list[str]) -> int:
  with tempfile.TemporaryDirectory(prefix="jaxlab-tests-") as ledger:
    rc = _pytest(args, ledger)
    if rc == 0:
      return 0
    crashed, again = rerun_plan(_read(os.path.join(ledger, "collected.txt")),
                                _read(os.path.join(ledger, "outcomes.txt")))
    if not again:
      return rc
    print(f"\nrun_tests: a pytest worker crashed natively while running {', '.join(crashed)};"
          f" every other failure count is 0, so the {len(again)} tests that did not pass"
          " run once more in fresh workers.", flush=True)
    ids = os.path.join(ledger, "again.txt")
    with open(ids, "w") as f:
      f.writelines(n + "\n" for n in again)
    paths = set(_read(os.path.join(ledger, "args.txt")))
    os.remove(os.path.join(ledger, "outcomes.txt"))
    return _pytest([a for a in args if a not in paths] + [f"@{ids}"], ledger)


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
