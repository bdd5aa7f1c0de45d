"""Frozen kw_only dataclass configs, `--set a.b=value` overrides, JSON round-trips.

Examples:
  >>> import dataclasses
  >>> @dataclasses.dataclass(frozen=True, kw_only=True)
  ... class Opt:
  ...   lr: float = 0.1
  >>> @dataclasses.dataclass(frozen=True, kw_only=True)
  ... class Cfg:
  ...   opt: Opt = Opt()
  ...   steps: int = 10
  >>> apply_overrides(Cfg(), ["opt.lr=0.5", "steps=3"])
  Cfg(opt=Opt(lr=0.5), steps=3)
"""

import dataclasses
import json
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal

from jaxlab.core.errors import ConfigError


def _fields(cfg: Any) -> dict[str, dataclasses.Field]:
  return {f.name: f for f in dataclasses.fields(cfg)}


def _type_name(tp: Any) -> str:
  return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def parse_value(text: str, tp: Any, key: str) -> Any:
  """Parses ``text`` as a value of type ``tp``; raises ConfigError naming ``key``."""
  origin = typing.get_origin(tp)
  args = typing.get_args(tp)
  bad = ConfigError(
    f"--set {key}={text!r}: expected a value of type {_type_name(tp)}"
  )
  if origin in (typing.Union, types.UnionType):
    if text.lower() in ("none", "null") and type(None) in args:
      return None
    for a in args:
      if a is type(None):
        continue
      try:
        return parse_value(text, a, key)
      except ConfigError:
        pass
    raise bad
  if origin is Literal:
    for a in args:
      if str(a) == text:
        return a
    raise ConfigError(
      f"--set {key}={text!r}: must be one of {', '.join(map(str, args))}"
    )
  if origin in (tuple, list):
    items = [t for t in text.strip("()[]").split(",") if t.strip()]
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
      vals = [parse_value(t.strip(), args[0], key) for t in items]
    elif origin is tuple and args:
      if len(items) != len(args):
        raise ConfigError(
          f"--set {key}={text!r}: expected {len(args)} comma-separated values"
        )
      vals = [parse_value(t.strip(), a, key) for t, a in zip(items, args)]
    else:
      elem = args[0] if args else str
      vals = [parse_value(t.strip(), elem, key) for t in items]
    return tuple(vals) if origin is tuple else vals
  if tp is bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
      return True
    if low in ("0", "false", "no", "off"):
      return False
    raise bad
  if tp is int:
    try:
      return int(text)
    except ValueError:
      raise bad from None
  if tp is float:
    try:
      return float(text)
    except ValueError:
      raise bad from None
  if tp is str:
    return text
  if tp is Any:
    try:
      return json.loads(text)
    except json.JSONDecodeError:
      return text
  raise ConfigError(f"--set {key}: fields of type {_type_name(tp)} cannot be set")


def _set(cfg: Any, path: list[str], text: str, full: str) -> Any:
  fields = _fields(cfg)
  name = path[0]
  if name not in fields:
    where = full.rsplit(".", len(path))[0] if len(path) < len(full.split(".")) else ""
    prefix = f"{where}." if where and where != full else ""
    valid = ", ".join(prefix + n for n in fields)
    raise ConfigError(f"unknown config key {full!r}; valid keys here: {valid}")
  hints = typing.get_type_hints(type(cfg))
  current = getattr(cfg, name)
  if len(path) > 1:
    if not dataclasses.is_dataclass(current):
      raise ConfigError(f"config key {full!r}: {name!r} has no sub-keys")
    value = _set(current, path[1:], text, full)
  else:
    if dataclasses.is_dataclass(current):
      sub = ", ".join(f"{full}.{n}" for n in _fields(current))
      raise ConfigError(f"config key {full!r} is a group; set one of: {sub}")
    value = parse_value(text, hints[name], full)
  return dataclasses.replace(cfg, **{name: value})


def apply_overrides(cfg: Any, overrides: Sequence[str]) -> Any:
  """Returns ``cfg`` with ``key.sub=value`` overrides applied, type-checked."""
  for item in overrides:
    if "=" not in item:
      raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set seed=1")
    key, text = item.split("=", 1)
    cfg = _set(cfg, key.strip().split("."), text.strip(), key.strip())
  return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
  """A JSON-ready dict of a (nested) dataclass config."""

  def conv(v: Any) -> Any:
    if dataclasses.is_dataclass(v):
      return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, (tuple, list)):
      return [conv(x) for x in v]
    if isinstance(v, dict):
      return {str(k): conv(x) for k, x in v.items()}
    return v

  return conv(cfg)


def diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
  """Dotted keys whose values differ between two config dicts."""
  out = []
  for k in sorted(set(a) | set(b)):
    ka = f"{prefix}{k}"
    va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
    if isinstance(va, dict) and isinstance(vb, dict):
      out += diff(va, vb, ka + ".")
    elif va != vb:
      out.append(f"{ka}: {va!r} -> {vb!r}")
  return out


def dumps(cfg: Any) -> str:
  return json.dumps(to_dict(cfg), indent=2, sort_keys=True)
