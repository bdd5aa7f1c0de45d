"""Test set-up: 8 fake CPU devices before any backend initialises.

The persistent XLA compilation cache is off by default. On this jaxlib (0.10.2, CPU) reading a
cached executable back can crash the process (`Fatal Python error: Segmentation fault` inside
`compilation_cache.get_executable_and_time`), seen twice in full runs; under
`--dist loadfile` a crashed xdist worker then hangs the whole run. Set
`JAXLAB_TEST_COMPILE_CACHE=<dir>` to opt in for faster local reruns. The inherited
`JAX_COMPILATION_CACHE_DIR` is dropped so that the test processes and the subprocesses they start
do not read a cache by accident.

`JAX_DISABLE_MOST_OPTIMIZATIONS` is dropped too: it would halve the suite, but XLA:CPU at
backend optimisation level 0 miscompiles convolution gradients (NaN under `jit`, finite op by
op; `mnist-cnn` stops with a NaN loss), so tests would check broken training (README, "Test
runs").

The suite runs at XLA backend optimisation level 1 (`--xla_backend_optimization_level=1`
appended to `XLA_FLAGS`, inherited by the subprocesses the tests start): it is compile-bound,
and level 1 compiles in about a third less time with finite conv gradients and the same test
outcomes (README, "Test runs"). `JAXLAB_TEST_XLA_OPT_LEVEL=<n>` picks another level;
`JAXLAB_TEST_XLA_OPT_LEVEL=default` leaves `XLA_FLAGS` alone (XLA's default, what users run).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("JAXLAB_NO_PROGRESS", "1")
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
os.environ.pop("JAX_DISABLE_MOST_OPTIMIZATIONS", None)
_cache = os.environ.get("JAXLAB_TEST_COMPILE_CACHE")
_level = os.environ.get("JAXLAB_TEST_XLA_OPT_LEVEL", "1")
_xla_flags = os.environ.get("XLA_FLAGS", "")
if _level not in ("default", "0", "1", "2", "3"):
  raise SystemExit(f"JAXLAB_TEST_XLA_OPT_LEVEL={_level!r}: use 0-3 or 'default'")
if _level != "default" and "--xla_backend_optimization_level" not in _xla_flags:
  os.environ["XLA_FLAGS"] = f"{_xla_flags} --xla_backend_optimization_level={_level}".strip()

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_threefry_partitionable", True)
if _cache:
  jax.config.update("jax_compilation_cache_dir", _cache)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
