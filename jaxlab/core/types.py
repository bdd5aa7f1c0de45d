"""Type aliases shared across jaxlab."""

from collections.abc import Mapping
from typing import Any

import jax

Params = Any
PyTree = Any
Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]
PRNGKey = jax.Array
