#!/usr/bin/env bash
# Set up if needed, then run every paper's quick experiment and write REPORT.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/jaxlab reproduce --quick "$@"
