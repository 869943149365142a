#!/usr/bin/env bash
# Creates (or reuses) tools/.venv and installs what it lacks of the given modules, each named
# `module` or `module:pypi-package` (e.g. `faiss:faiss-cpu`). Idempotent: a module already
# importable is not reinstalled. Prints the venv's python.
#
#   tools/lib/venv.sh numpy hnswlib faiss:faiss-cpu matplotlib
#
# QUIVER_VENV names another venv directory under tools/ (e.g. .venv-milvus) for a tool whose pinned
# packages would clash with the shared venv's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/tools/${QUIVER_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
py="$venv/bin/python"
need=()
for spec in "$@"; do
    module="${spec%%:*}" package="${spec#*:}"
    "$py" -c "import $module" 2>/dev/null || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "venv: installing ${need[*]}" >&2
    "$py" -m pip install --quiet --disable-pip-version-check "${need[@]}" >&2
fi
echo "$py"
