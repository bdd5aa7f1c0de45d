"""House rules a machine can check: layering, no pmap, registry contract."""

import ast
import importlib
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOWER = ("core", "data", "models", "federated", "interp", "tuning")


def _imports(path):
  tree = ast.parse(path.read_text())
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      yield node.module


def test_methods_never_import_each_other_and_lower_layers_never_import_methods():
  for path in (ROOT / "jaxlab" / "methods").rglob("*.py"):
    own = path.relative_to(ROOT / "jaxlab" / "methods").parts[0]
    for mod in _imports(path):
      if mod.startswith("jaxlab.methods."):
        assert mod.split(".")[2] == own, (path, mod)
  for layer in LOWER:
    for path in (ROOT / "jaxlab" / layer).rglob("*.py"):
      for mod in _imports(path):
        assert not mod.startswith("jaxlab.methods"), (path, mod)
        assert not mod.startswith("experiments"), (path, mod)


def test_no_pmap_and_no_runtime_downloads():
  bad = ("jax.pmap", "hf_hub_download", "snapshot_download", "urlretrieve", "download=True")
  for path in list((ROOT / "jaxlab").rglob("*.py")) + list((ROOT / "experiments").rglob("*.py")):
    text = path.read_text()
    for b in bad:
      assert b not in text, (path, b)


def test_every_registered_experiment_follows_the_contract():
  import experiments

  for name in experiments.QUICK:
    assert name in experiments.EXPERIMENTS
  missing = []
  for name, mod_name in experiments.EXPERIMENTS.items():
    try:
      mod = importlib.import_module(mod_name)
    except ModuleNotFoundError:
      missing.append(name)
      continue
    assert isinstance(mod.DESCRIPTION, str) and mod.DESCRIPTION, name
    assert callable(mod.run) and callable(mod.get_config), name
    smoke, full = mod.get_config(smoke=True), mod.get_config(smoke=False)
    assert hash(smoke) is not None and hash(full) is not None, f"{name}: config must be frozen"
  assert not missing, f"registered but not present: {missing}"
