#!/usr/bin/env bash
# Optional: pyarrow and pandas from PyPI into the project's own environment .venv-parquet,
# for the Parquet export of BUTTER summaries (tools/butter_export.py, docs/butter.md).
# Needs the network once; without it the Parquet export is unavailable and its CSV form
# works. scripts/setup.sh calls this and goes on if it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
VENV=.venv-parquet
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import pyarrow, pandas" 2>/dev/null; then
  exit 0
fi
"$PY" -m venv "$VENV"
timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check pyarrow pandas
"$VENV/bin/python" -c "import pyarrow, pandas; print('setup: pyarrow', pyarrow.__version__, 'pandas', pandas.__version__, 'in $VENV')"
