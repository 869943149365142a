#!/usr/bin/env bash
# Creates (or reuses) tools/.venv with FAISS (faiss-cpu), numpy and matplotlib for tools/bench-ivfpq.
# Idempotent: a package already importable is not reinstalled. Prints the venv's python.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/tools/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
py="$venv/bin/python"
need=()
"$py" -c 'import numpy' 2>/dev/null || need+=(numpy)
"$py" -c 'import faiss' 2>/dev/null || need+=(faiss-cpu)
"$py" -c 'import matplotlib' 2>/dev/null || need+=(matplotlib)
if [ ${#need[@]} -gt 0 ]; then
    echo "venv: installing ${need[*]}" >&2
    "$py" -m pip install --quiet --disable-pip-version-check "${need[@]}" >&2
fi
echo "$py"
