"""CPU feature detection and the warning for bf16 steps on CPUs that emulate bf16."""

import warnings

import numpy as np
import pytest

from jaxlab.core import hardware
from jaxlab.interp.testing import tiny_model
from jaxlab.tuning import loop

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx2 fma
processor\t: 1
model name\t: other
flags\t\t: avx512f avx512_bf16
"""


def test_parse_cpuinfo_takes_the_first_cpu():
  name, flags = hardware.parse_cpuinfo(CPUINFO)
  assert name == "AMD EPYC 7B13"
  assert flags == frozenset({"fpu", "sse2", "avx2", "fma"})
  assert hardware.parse_cpuinfo("") == ("", frozenset())


@pytest.mark.parametrize("backend, flags, want", [
  ("cpu", {"avx2"}, False),
  ("cpu", {"avx2", "avx512f"}, False),   # AVX-512 without its bf16 extension (Skylake-X)
  ("cpu", {"avx2", "avx512f", "avx512_bf16"}, True),
  ("cpu", {"amx_bf16"}, True),
  ("cpu", set(), None),          # flags unreadable: unknown, so nobody warns
  ("gpu", {"avx2"}, True),
])
def test_native_bf16(monkeypatch, backend, flags, want):
  monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
  assert hardware.native_bf16(backend) is want


def test_cpu_summary_names_the_vector_extensions(monkeypatch):
  monkeypatch.setattr(hardware, "cpu_name", lambda: "AMD EPYC")
  monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "fma", "avx512f"}))
  assert hardware.cpu_summary() == "AMD EPYC (avx2, avx512f)"
  monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"fp", "asimd"}))   # aarch64
  assert hardware.cpu_summary() == "AMD EPYC (no AVX2 / AVX-512)"
  monkeypatch.setattr(hardware, "cpu_flags", frozenset)
  assert hardware.cpu_summary() == "AMD EPYC (flags unknown)"


@pytest.mark.parametrize("native, dtype, warns", [
  (False, "bfloat16", True), (True, "bfloat16", False), (None, "bfloat16", False),
  (False, "float32", False)])
def test_bf16_warning_only_where_bf16_is_emulated(monkeypatch, native, dtype, warns):
  monkeypatch.setattr(hardware, "native_bf16", lambda backend=None: native)
  with warnings.catch_warnings(record=True) as got:
    warnings.simplefilter("always")
    loop.warn_emulated_bf16(dtype)
  assert len(got) == int(warns)
  if warns:
    assert "use float32" in str(got[0].message) and "avx512_bf16" in str(got[0].message)


def test_study_checks_warn_before_any_work(monkeypatch):
  """The study-level check (SPT, arithmetic) warns before any work; a sweep warns."""
  monkeypatch.setattr(hardware, "native_bf16", lambda backend=None: False)
  with pytest.warns(UserWarning, match="tune_dtype=.bfloat16. on a CPU without native bf16"):
    loop.check_compute_dtype("bfloat16", "tune_dtype")
  with warnings.catch_warnings():
    warnings.simplefilter("error")          # building a config never asks JAX for its backend
    tc = loop.TrainConfig(compute_dtype="bfloat16", steps=1, batch_size=2, target_len=2)
  cfg, params = tiny_model(layers=2)
  data = {"ids": np.ones((2, 4), np.int32), "mask": np.ones((2, 4), np.int32),
          "loss_mask": np.ones((2, 4), np.float32)}
  with pytest.warns(UserWarning, match="compute_dtype="):   # the sweep does
    loop.sweep(cfg, params, loop.Arm(name="h", heads=((1, 0),)), data, [loop.Lane(1e-3)], tc)
