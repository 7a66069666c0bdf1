#!/usr/bin/env bash
# Runs the churn example: generates the data (once), makes sure a Python with mlflow and
# scikit-learn is on PATH for the sklearn step (the repo's test venv, or a venv of its own
# here), then runs the pipeline with Loom's embedded store in ./loom-data. Arguments go to
# `loom pipeline run` (for example --no-cache, --param min_auc=0.8).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LOOM="${LOOM_BIN:-}"
if [ -z "$LOOM" ]; then
  if command -v loom >/dev/null 2>&1; then LOOM="$(command -v loom)"; else
    (cd "$ROOT" && swift build --product loom >/dev/null)
    LOOM="$(cd "$ROOT" && swift build --show-bin-path)/loom"
  fi
fi
[ -f "$HERE/data/customers.csv" ] || python3 "$HERE/generate.py"
has_deps() { "$1" -c "import mlflow, sklearn, pandas" >/dev/null 2>&1; }
if has_deps python 2>/dev/null; then :
elif [ -x "$ROOT/.venv/bin/python" ] && has_deps "$ROOT/.venv/bin/python"; then export PATH="$ROOT/.venv/bin:$PATH"
else
  if [ ! -x "$HERE/.venv/bin/python" ] || ! has_deps "$HERE/.venv/bin/python"; then
    echo "creating $HERE/.venv with mlflow and scikit-learn (once)"
    python3 -m venv "$HERE/.venv"
    "$HERE/.venv/bin/pip" install -q mlflow scikit-learn pandas
  fi
  export PATH="$HERE/.venv/bin:$PATH"
fi
exec "$LOOM" pipeline run -f "$HERE/pipeline.yaml" "$@"
