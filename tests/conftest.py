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

Within one test process, a program identical to one compiled earlier reuses its executable from
memory (`_share_executables`; `JAXLAB_TEST_SHARE_COMPILES=0` turns it off): a resume test's
second run compiles nothing it already compiled.
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
  it resumes a second time (a new Python closure is a new ``jit``). JAX computes its
  persistent-cache key for every compile (the program without debug info, compile options,
  XLA flags, backend) and asks its cache before compiling; with no cache directory the
  answer is always "miss". This answers from memory instead: the executables that took >=
  ``min_seconds`` to compile, keyed by that key plus the device ids they are loaded on.
  Nothing is serialised (the on-disk cache can crash this jaxlib, see the module
  docstring), and programs with host callbacks are not kept. Off with
  ``JAXLAB_TEST_SHARE_COMPILES=0``.
  """
  import collections
  import threading

  from jax._src import compiler

  read, write = compiler._cache_read, compiler._cache_write
  kept = collections.OrderedDict()
  asked = threading.local()

  def cache_read(module_name, cache_key, compile_options, backend, executable_devices):
    asked.key = (cache_key, tuple(d.id for d in executable_devices))
    if asked.key in kept:
      kept.move_to_end(asked.key)
      return kept[asked.key]
    return read(module_name, cache_key, compile_options, backend, executable_devices)

  def cache_write(cache_key, compile_time_secs, module_name, backend, executable,
                  host_callbacks):
    key = getattr(asked, "key", None)
    if (key is not None and key[0] == cache_key and not host_callbacks
        and compile_time_secs >= cache_write.min_seconds):
      kept[key] = (executable, compile_time_secs)
      if len(kept) > max_entries:
        kept.popitem(last=False)
    return write(cache_key, compile_time_secs, module_name, backend, executable, host_callbacks)

  cache_write.min_seconds = min_seconds      # tests/core/shared_compiles_test.py lowers it
  compiler._cache_read, compiler._cache_write = cache_read, cache_write


if os.environ.get("JAXLAB_TEST_SHARE_COMPILES", "1") != "0":
  _share_executables()
