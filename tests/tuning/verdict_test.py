"""The verdict picture's log-axis labels: only mantissas 2 and 5 between decades."""

import pytest

from jaxlab.tuning import verdict


@pytest.mark.parametrize("x, label", [(0.02, "0.02"), (0.05, "0.05"), (0.2, "0.2"),
                                      (0.005, "0.005"), (0.03, ""), (0.07, ""), (0.0, "")])
def test_minor_labels(x, label):
  assert verdict._minor_label(x) == label


def test_frontier_writes_a_png(tmp_path):
  arms = {"base": {"target": (0.3, 0.2, 0.4), "kl": (0.0, None, None)},
          "a": {"target": (0.6, 0.5, 0.7), "kl": (0.04, 0.03, 0.05),
                "per_lr": [("1e-3", 0.04, 0.6), ("1e-2", 0.2, 0.5)]}}
  path = verdict.frontier(tmp_path / "v.png", arms, target="t")
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
