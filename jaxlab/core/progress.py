"""Progress bars for long loops (tqdm; quiet when JAXLAB_NO_PROGRESS is set)."""

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def progress(
  iterable: Iterable[Any] | None = None,
  total: int | None = None,
  desc: str = "",
  initial: int = 0,
) -> tqdm:
  """A tqdm bar; disabled when ``JAXLAB_NO_PROGRESS=1``."""
  disable = os.environ.get("JAXLAB_NO_PROGRESS", "") not in ("", "0")
  return tqdm(
    iterable, total=total, desc=desc, initial=initial, disable=disable,
    dynamic_ncols=True, leave=False,
  )
