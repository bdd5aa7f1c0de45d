"""The per-client table on the host (``client_table="host"``, ``fl.host_table``).

References: the on-device tables (replicated without a mesh, client-sharded on a
mesh), which never touch ``fl.host_table``, and plain NumPy indexing.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fed_helpers as helpers
from jaxlab import federated as fl
from jaxlab.core.errors import ConfigError
from jaxlab.federated import loop

SIZES, IDS = helpers.SHARD_SIZES, helpers.SHARD_IDS   # K = 10: pads to 16 rows on 8 devices


def _host(ref, path=None, mesh=None):
  """``ref``'s algorithm, config and data on a host table."""
  return fl.Engine(ref.alg, ref.config, ref.data, mesh=mesh, client_table="host",
                   client_table_path=path)



def _check_same(sim_h, m_h, sim_r, m_r, k=len(SIZES)):
  chex.assert_trees_all_close(sim_h.server, sim_r.server, rtol=0, atol=1e-6)
  rows = jax.tree.map(lambda t: np.asarray(t)[:k], sim_r.clients)
  chex.assert_trees_all_close(jax.tree.map(np.asarray, sim_h.clients), rows, rtol=0, atol=1e-6)
  chex.assert_trees_all_close(m_h, m_r, rtol=0, atol=1e-6)
  # the c_k rows moved (an all-zero table would pass trivially)
  assert max(float(np.abs(x).max()) for x in jax.tree.leaves(sim_h.clients)) > 1e-3


@pytest.mark.parametrize("memmap", [False, True])
def test_host_table_equals_device_table_one_device(tmp_path, memmap, monkeypatch):
  monkeypatch.setattr(fl.host_table, "FILL_BYTES", 1)      # fill the memmaps row by row
  ref = helpers.make("scaffold", sizes=SIZES, groups=2)
  eng = _host(ref, tmp_path / "tab" if memmap else None)
  assert eng.table_mode == "host" and ref.table_mode == "replicated"
  sim_h, m_h = helpers.run_rounds(eng)
  sim_r, m_r = helpers.run_rounds(ref)
  for leaf in jax.tree.leaves(sim_h.clients):
    assert isinstance(leaf, np.memmap if memmap else np.ndarray) and leaf.shape[0] == 10
  _check_same(sim_h, m_h, sim_r, m_r)
  if memmap:      # the rows are in the files
    files = sorted((tmp_path / "tab").glob("leaf_*.npy"))
    assert len(files) == len(jax.tree.leaves(sim_h.clients))
    on_disk = [np.load(f) for f in files]
    got = sorted(float(np.abs(a).sum()) for a in on_disk)
    want = sorted(float(np.abs(np.asarray(a)).sum()) for a in jax.tree.leaves(sim_r.clients))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_host_table_equals_sharded_table_on_mesh():
  assert len(jax.devices()) == 8
  mesh = fl.clients_mesh()
  ref = helpers.make("scaffold", sizes=SIZES, mesh=mesh, groups=2)
  assert ref.table_mode == "sharded"
  eng = _host(ref, mesh=mesh)
  sim_h, m_h = helpers.run_rounds(eng)
  sim_r, m_r = helpers.run_rounds(ref)
  _check_same(sim_h, m_h, sim_r, m_r)


def test_host_table_with_client_chunks_on_mesh():
  mesh = fl.clients_mesh(4)
  ref = helpers.make("scaffold", sizes=SIZES, mesh=mesh, chunk=2, client_table="replicated")
  eng = _host(ref, mesh=mesh)
  sim_h, m_h = helpers.run_rounds(eng)
  sim_r, m_r = helpers.run_rounds(ref)
  _check_same(sim_h, m_h, sim_r, m_r)


def test_gather_and_write_rows_equal_numpy():
  table = {"a": np.arange(30, dtype=np.float32).reshape(10, 3)}
  ids = np.array([7, 10, 0, 3], np.int32)                 # 10 = padding
  got = fl.host_table.gather_rows(table, ids, 10)["a"]
  np.testing.assert_array_equal(got, [[21, 22, 23], [0, 0, 0], [0, 1, 2], [9, 10, 11]])
  fl.host_table.write_rows(table, ids, {"a": -np.ones((4, 3), np.float32)}, 10)
  want = np.arange(30, dtype=np.float32).reshape(10, 3)
  want[[7, 0, 3]] = -1
  np.testing.assert_array_equal(table["a"], want)


@pytest.mark.parametrize("memmap", [False, True])
def test_resume_equals_uninterrupted(tmp_path, memmap, monkeypatch):
  monkeypatch.setattr(fl.host_table, "FILL_BYTES", 300)    # copy a restored table in chunks
  ref = helpers.make("scaffold", sizes=SIZES)
  path = (lambda name: tmp_path / name) if memmap else (lambda name: None)
  full_cfg = loop.LoopConfig(rounds=4, per_round=4, checkpoint_every=2)
  part_cfg = loop.LoopConfig(rounds=2, per_round=4, checkpoint_every=2)
  key = jax.random.key(3)
  sim_full, hist_full = loop.train(_host(ref, path("full")), key, full_cfg,
                                   out_dir=tmp_path / "full_out")
  loop.train(_host(ref, path("part")), key, part_cfg, out_dir=tmp_path / "out")
  sim_res, hist_res = loop.train(_host(ref, path("part")), key, full_cfg, out_dir=tmp_path / "out")
  assert [h["round"] for h in hist_res] == [1, 2, 3, 4]
  np.testing.assert_allclose([h["loss"] for h in hist_res], [h["loss"] for h in hist_full],
                             rtol=0, atol=1e-6)
  chex.assert_trees_all_close(sim_res.server, sim_full.server, rtol=0, atol=1e-6)
  chex.assert_trees_all_close(jax.tree.map(np.asarray, sim_res.clients),
                              jax.tree.map(np.asarray, sim_full.clients), rtol=0, atol=1e-6)
  # and both equal the on-device table over the same 4 rounds
  sim_dev, _ = loop.train(ref, key, full_cfg)
  chex.assert_trees_all_close(jax.tree.map(np.asarray, sim_res.clients),
                              jax.tree.map(np.asarray, sim_dev.clients), rtol=0, atol=1e-6)
  if memmap:
    assert all(isinstance(x, np.memmap) for x in jax.tree.leaves(sim_res.clients))


def test_host_table_errors(tmp_path):
  ref = helpers.make("scaffold", sizes=SIZES)
  with pytest.raises(ConfigError, match="needs client_table='host'"):
    fl.Engine(ref.alg, ref.config, ref.data, client_table_path=tmp_path)
  f = tmp_path / "file"
  f.write_text("x")
  with pytest.raises(ConfigError, match="is a file"):
    _host(ref, f)
  eng = _host(ref)
  sim = eng.init(jax.random.key(0))
  with pytest.raises(ConfigError, match="stepped engine needs the client table on device"):
    fl.stepped.run_round(eng, sim, np.arange(4), jax.random.key(1))
  with pytest.raises(ConfigError, match="sequential engine needs the client table"):
    fl.sequential.run_round(eng, sim, np.arange(4), jax.random.key(1))
