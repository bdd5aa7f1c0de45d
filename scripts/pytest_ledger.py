"""A pytest plugin that keeps a ledger of what was collected and how each test ended.

Loaded by `scripts/run_tests.py` (`-p pytest_ledger`, with `scripts/` on `PYTHONPATH`) and
active only when `JAXLAB_TEST_LEDGER` names a folder. Under pytest-xdist the workers collect
and the controller receives every report, so `collected.txt` is written by one worker (gw0, or
the single process without xdist) and `outcomes.txt` by the controller only. A report whose text
says that an xdist worker crashed while running it is recorded as `crashed`, not `failed`.
`args.txt` holds the positional paths pytest parsed from the command line (`config.args`).
"""

import os

_CRASH = "crashed while running"


def _ledger():
  return os.environ.get("JAXLAB_TEST_LEDGER")


def pytest_configure(config):
  folder = _ledger()
  if folder and "PYTEST_XDIST_WORKER" not in os.environ:
    with open(os.path.join(folder, "args.txt"), "w") as f:
      f.writelines(a + "\n" for a in config.args)


def pytest_collection_finish(session):
  folder = _ledger()
  if folder and os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0":
    with open(os.path.join(folder, "collected.txt"), "w") as f:
      f.writelines(item.nodeid + "\n" for item in session.items)


def pytest_runtest_logreport(report):
  folder = _ledger()
  if not folder or "PYTEST_XDIST_WORKER" in os.environ:
    return
  if report.skipped:
    outcome = "skipped"
  elif report.failed:
    outcome = "crashed" if _CRASH in str(report.longrepr) else "failed"
  elif report.when == "call":
    outcome = "passed"
  else:
    return
  with open(os.path.join(folder, "outcomes.txt"), "a") as f:
    f.write(f"{outcome} {report.nodeid}\n")
