#!/usr/bin/env bash
# Set up if needed, then run the whole test suite (CPU, 8 fake devices).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export JAXLAB_NO_PROGRESS=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
workers=${JAXLAB_TEST_WORKERS:-2}
exec .venv/bin/python -m pytest tests -q -n "$workers" --dist loadfile --timeout 900 "$@"
