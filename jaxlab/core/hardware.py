"""What the host CPU can do, read from ``/proc/cpuinfo`` (Linux; empty elsewhere).

Used where a setting's speed depends on the hardware: bf16 mixed precision pays only
where bf16 products run natively (AVX512-BF16 or AMX on x86 CPUs; every GPU and TPU
jaxlab targets). On an AVX2-only CPU XLA emulates them and a bf16 step is slower than fp32.
"""

from __future__ import annotations

import functools
import platform

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# the vector extensions that decide this library's CPU speeds, named in benchmark records
SHOWN_FLAGS = ("avx2", "avx512f") + BF16_FLAGS


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
  """``(model name, flags)`` of the first CPU listed in a ``/proc/cpuinfo`` text."""
  name, flags = "", frozenset()
  for line in text.splitlines():
    key, _, value = line.partition(":")
    key = key.strip()
    if key == "model name" and not name:
      name = value.strip()
    elif key == "flags" and not flags:
      flags = frozenset(value.split())
    if name and flags:
      break
  return name, flags


@functools.cache
def _cpuinfo() -> tuple[str, frozenset[str]]:
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      return parse_cpuinfo(f.read())
  except OSError:
    return "", frozenset()


def cpu_name() -> str:
  """The CPU's model name (``platform`` when ``/proc/cpuinfo`` is missing)."""
  return _cpuinfo()[0] or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
  """The CPU's feature flags (empty when ``/proc/cpuinfo`` is missing)."""
  return _cpuinfo()[1]


def cpu_summary() -> str:
  """The model name and which of ``SHOWN_FLAGS`` the CPU has, e.g. ``AMD EPYC (avx2)``.

  Two machines can share a model name ("AMD EPYC") and differ in AVX-512 / bf16 support,
  which changes matmul and bf16 speeds; benchmark records carry this string.
  """
  flags = cpu_flags()
  have = ", ".join(f for f in SHOWN_FLAGS if f in flags)
  return f"{cpu_name()} ({have or ('no AVX2 / AVX-512' if flags else 'flags unknown')})"


def native_bf16(backend: str | None = None) -> bool | None:
  """Whether bf16 matrix products run natively on ``backend`` (default: JAX's default).

  True on GPU/TPU; on CPU True iff the flags include AVX512-BF16 or AMX-BF16; None on a
  CPU whose flags cannot be read (not Linux), so callers only warn when they know.
  """
  import jax  # pylint: disable=import-outside-toplevel  (bench reads the CPU without JAX)
  backend = backend or jax.default_backend()
  if backend != "cpu":
    return True
  flags = cpu_flags()
  if not flags:
    return None
  return any(f in flags for f in BF16_FLAGS)
