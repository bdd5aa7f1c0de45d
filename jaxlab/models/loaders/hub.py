"""Hub ids ("org/name") resolved from the local Hugging Face cache, offline only."""

import os

from jaxlab.core.errors import AssetMissingError


def hub_cache_dir() -> str:
  """The HF hub cache jaxlab reads: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/..."""
  if os.environ.get("HF_HUB_CACHE"):
    return os.environ["HF_HUB_CACHE"]
  home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
  return os.path.join(home, "hub")


def resolve_hub_id(repo_id: str, revision: str = "main") -> str:
  """The snapshot directory of `repo_id` in the local HF cache (never downloads).

  Reads the cache layout directly (``models--org--name/refs/<revision>`` ->
  ``snapshots/<commit>``; a commit hash as ``revision`` is taken as is), so no
  code path here can reach the network.

  Raises:
    AssetMissingError: one line naming the cache path, when the model is not cached.
  """
  cache = hub_cache_dir()
  repo = os.path.join(cache, "models--" + repo_id.replace("/", "--"))
  ref = os.path.join(repo, "refs", revision)
  commit = open(ref).read().strip() if os.path.isfile(ref) else revision
  path = os.path.join(repo, "snapshots", commit)
  if not os.path.isdir(path):
    raise AssetMissingError(
      f"{repo_id!r} (revision {revision!r}) is not in the local Hugging Face cache {cache} "
      f"(looked for {path}; jaxlab never downloads); fetch it elsewhere with "
      f"`hf download {repo_id}` and copy the cache, or pass a checkpoint directory.")
  if not os.path.exists(os.path.join(path, "config.json")):
    raise AssetMissingError(f"{repo_id!r} in the HF cache {cache} has no config.json at "
                            f"{path}; it is not a complete decoder checkpoint.")
  return path
