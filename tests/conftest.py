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


def _share_executables(min_seconds: float = 0.5, max_entries: int = 256):
  """Reuses the XLA executable of an identical program compiled earlier in this process.

  Each ``run()`` builds its engines anew, so a resume test compiles the programs of the run
  it resumes a second time (a new Python closure is a new ``jit``). This keeps, in memory, the
  executables that took >= ``min_seconds`` to compile, keyed by JAX's own persistent-cache
  key (the program without debug info, compile options, XLA flags, backend) plus the device
  ids it is loaded on. Nothing is serialised (the on-disk cache can crash this jaxlib, see
  the module docstring), and programs with host callbacks are never shared.
  ``JAXLAB_TEST_SHARE_COMPILES=0`` turns it off.
  """
  import collections
  import time

  from jax._src import cache_key, compiler

  original = compiler.compile_or_get_cached
  kept = collections.OrderedDict()

  def compile_or_share(backend, computation, devices, compile_options, host_callbacks,
                       executable_devices, *args, **kwargs):
    if host_callbacks:
      return original(backend, computation, devices, compile_options, host_callbacks,
                      executable_devices, *args, **kwargs)
    try:
      key = (cache_key.get(computation, devices, compile_options, backend),
             tuple(d.id for d in executable_devices))
    except Exception:  # noqa: BLE001 - a program JAX cannot key is compiled as usual
      return original(backend, computation, devices, compile_options, host_callbacks,
                      executable_devices, *args, **kwargs)
    if key in kept:
      kept.move_to_end(key)
      return kept[key]
    start = time.perf_counter()
    exe = original(backend, computation, devices, compile_options, host_callbacks,
                   executable_devices, *args, **kwargs)
    if time.perf_counter() - start >= min_seconds:
      kept[key] = exe
      if len(kept) > max_entries:
        kept.popitem(last=False)
    return exe

  compiler.compile_or_get_cached = compile_or_share


if os.environ.get("JAXLAB_TEST_SHARE_COMPILES", "1") != "0":
  _share_executables()
