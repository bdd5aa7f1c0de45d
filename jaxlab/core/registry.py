"""Looks up experiments in an explicit table: ``EXPERIMENTS`` (name -> module
path) and ``QUICK`` (name -> smoke flag) of the package named by
``$JAXLAB_EXPERIMENTS`` (default ``experiments``, this repository's). Research
code can point it at its own table without touching jaxlab.
"""

import importlib
import os
import types

from jaxlab.core.errors import ConfigError


def _package() -> types.ModuleType:
  return importlib.import_module(os.environ.get("JAXLAB_EXPERIMENTS", "experiments"))


def table() -> dict[str, str]:
  return dict(_package().EXPERIMENTS)


def quick() -> dict[str, bool]:
  return dict(_package().QUICK)


def get(name: str) -> types.ModuleType:
  """The experiment module registered as ``name``."""
  names = table()
  if name not in names:
    raise ConfigError(
      f"unknown experiment {name!r}; known: {', '.join(sorted(names))}"
      " (see `jaxlab list`)"
    )
  try:
    return importlib.import_module(names[name])
  except ModuleNotFoundError as e:
    if e.name and names[name].startswith(e.name):
      raise ConfigError(
        f"experiment {name!r} is registered but its module {names[name]} is not"
        " present in this checkout"
      ) from None
    raise


def available() -> dict[str, str]:
  """Registered experiments whose module exists, name -> description."""
  out = {}
  for name, mod in table().items():
    if importlib.util.find_spec(mod.rsplit(".", 1)[0]) is None:
      continue
    try:
      if importlib.util.find_spec(mod) is None:
        continue
    except ModuleNotFoundError:
      continue
    out[name] = mod
  return out
