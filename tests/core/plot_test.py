"""`core.plot.intervals`: one row per label with its interval; mismatched inputs refused."""

import pytest

from jaxlab.core.plot import intervals


def test_intervals_writes_a_png_and_refuses_mismatched_lengths(tmp_path):
  out = intervals(tmp_path / "a.png", ["baseline", "qvix"], [0.5, 0.6], [0.4, 0.5], [0.6, 0.7],
                  xlabel="accuracy", refs={"baseline": 0.5, "chance": 0.25})
  assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
  with pytest.raises(ValueError, match="2 labels but 1 values"):
    intervals(tmp_path / "b.png", ["a", "b"], [0.5], [0.4], [0.6])
  assert not (tmp_path / "b.png").exists()
