"""`jaxlab list | run | reproduce | bench | generate`."""

import argparse
import os
import pathlib
import runpy
import sys

from jaxlab.core.errors import JaxlabError


def _init_runtime(args: argparse.Namespace) -> None:
  """Global JAX settings belong in entry points, never at import time."""
  import jax

  if getattr(args, "cpu_devices", None):
    jax.config.update("jax_num_cpu_devices", args.cpu_devices)
  jax.config.update("jax_threefry_partitionable", True)
  if getattr(args, "coordinator", None):
    _check_processes(args.num_processes, args.process_id)
    if args.process_id > 0:   # JAX aborts the process (no exception) if nobody answers
      _wait_for_coordinator(args.coordinator, args.init_timeout)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    where = (f"the coordinator {args.coordinator} as process {args.process_id} of"
             f" {args.num_processes}")
    try:
      jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
        initialization_timeout=args.init_timeout,
      )
    except Exception as e:   # jax raises several types here; report one line
      first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
      raise JaxlabError(
        f"could not join {where} ({first}); start every process with the same"
        " --coordinator and --num-processes and a distinct --process-id") from None
    if jax.process_count() != args.num_processes:
      raise JaxlabError(
        f"joined {where} but the job has {jax.process_count()} processes; pass the"
        " coordinator's --num-processes to every process")


def _wait_for_coordinator(address: str, timeout: float) -> None:
  """Polls ``host:port`` until it accepts a TCP connection, else one-line error."""
  import socket
  import time

  host, _, port = address.rpartition(":")
  end = time.monotonic() + timeout
  while True:
    try:
      with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
        return
    except (OSError, ValueError) as e:
      if time.monotonic() > end or isinstance(e, ValueError):
        raise JaxlabError(
          f"no coordinator answered at {address} within {timeout:.0f} s; start process 0"
          " first with the same --coordinator (host:port of process 0)") from None
      time.sleep(0.5)


def _check_processes(num_processes: int | None, process_id: int | None) -> None:
  """One-line errors for a --num-processes/--process-id pair that cannot work."""
  if num_processes is None or process_id is None:
    raise JaxlabError("--coordinator needs --num-processes N and --process-id I"
                      " (0 <= I < N) on every process")
  if num_processes < 1 or not 0 <= process_id < num_processes:
    raise JaxlabError(f"--process-id {process_id} with --num-processes {num_processes}:"
                      " the id must be in 0..N-1 and N >= 1")


def _cmd_list(args: argparse.Namespace) -> int:
  from jaxlab.core import registry

  quick = registry.quick()
  for name, mod in registry.table().items():
    try:
      desc = registry.get(name).DESCRIPTION
    except JaxlabError:
      desc = f"(not in this checkout: {mod})"
    tag = " [quick]" if name in quick else ""
    print(f"{name:28s}{desc}{tag}")
  return 0


def _cmd_run(args: argparse.Namespace) -> int:
  import json

  from jaxlab.core import experiment

  import jax

  # Several processes share one --out (orbax checkpoints need one directory on a
  # shared filesystem); only process 0 writes files, so only it checks the folder.
  follower = jax.process_count() > 1 and jax.process_index() > 0
  result = experiment.run(
    args.name, smoke=args.smoke, overrides=args.set, out_dir=args.out,
    resume=args.resume or follower,
  )
  out = args.out or experiment.default_out(args.name, args.smoke)
  print(json.dumps({k: v for k, v in result.items() if not isinstance(v, (list, dict))},
                   indent=1, default=str))
  print(f"results in {out}/")
  return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
  from jaxlab.core import report

  path, failures = report.reproduce(quick=args.quick, only=args.only, out_root=args.out)
  print(f"wrote {path}" + (f" ({failures} experiment(s) failed)" if failures else ""))
  return 1 if failures else 0


def _cmd_bench(args: argparse.Namespace) -> int:
  root = pathlib.Path(__file__).resolve().parent.parent / "scripts"
  path = root / f"bench_{args.name}.py"
  if not path.exists():
    names = sorted(p.stem[6:] for p in root.glob("bench_*.py"))
    raise JaxlabError(f"no benchmark {args.name!r}; available: {', '.join(names)}")
  sys.argv = [str(path), *args.args]
  runpy.run_path(str(path), run_name="__main__")
  return 0


def _compile_cache() -> str:
  """Persistent XLA compilation cache for `jaxlab generate`, so a repeat call skips compiling.

  Directory: $JAX_COMPILATION_CACHE_DIR, else $JAXLAB_COMPILE_CACHE, else
  ~/.cache/jaxlab/jax-compile. XLA:CPU has crashed (segfault) while deserialising a cached
  program in the test suite (see tests/conftest.py), so `--no-compile-cache` or
  JAXLAB_COMPILE_CACHE=off switches it off.
  """
  import jax

  path = (os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.environ.get("JAXLAB_COMPILE_CACHE")
          or os.path.join(os.path.expanduser("~"), ".cache", "jaxlab", "jax-compile"))
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return path


def _cmd_generate(argv: list[str]) -> int:
  from jaxlab.models import generate

  if "--no-compile-cache" not in argv and os.environ.get("JAXLAB_COMPILE_CACHE") != "off":
    _compile_cache()
  return generate.cli_main(argv)


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="jaxlab", description=__doc__)
  sub = p.add_subparsers(dest="cmd", required=True)
  sub.add_parser("list", help="registered experiments")
  r = sub.add_parser("run", help="run one experiment")
  r.add_argument("name")
  r.add_argument("--smoke", action="store_true", help="tiny config, seconds")
  r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  r.add_argument("--out", type=pathlib.Path, default=None)
  r.add_argument("--resume", action="store_true")
  r.add_argument("--cpu-devices", type=int, default=None,
                 help="split the CPU into N devices (testing sharding)")
  r.add_argument("--coordinator", default=None, help="multi-host: host:port of process 0")
  r.add_argument("--num-processes", type=int, default=None)
  r.add_argument("--process-id", type=int, default=None)
  r.add_argument("--init-timeout", type=int, default=300,
                 help="seconds to wait for every process to join the coordinator")
  q = sub.add_parser("reproduce", help="run each paper's experiment, write REPORT.md")
  q.add_argument("--quick", action="store_true")
  q.add_argument("--only", nargs="+", default=[])
  q.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/reproduce"))
  b = sub.add_parser("bench", help="run scripts/bench_NAME.py")
  b.add_argument("name")
  b.add_argument("args", nargs=argparse.REMAINDER)
  sub.add_parser("generate", help="generate text (see `jaxlab generate --help`)",
                 add_help=False)
  return p


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  os.environ.setdefault("HF_HUB_OFFLINE", "1")
  os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
  try:
    if argv[:1] == ["generate"]:
      _init_runtime(argparse.Namespace())
      return _cmd_generate(argv[1:])
    args = parser().parse_args(argv)
    _init_runtime(args)
    fn = {"list": _cmd_list, "run": _cmd_run, "reproduce": _cmd_reproduce,
          "bench": _cmd_bench}[args.cmd]
    return fn(args)
  except JaxlabError as e:
    print(f"jaxlab: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("jaxlab: interrupted (rerun with --resume to continue)", file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
