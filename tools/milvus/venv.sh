#!/usr/bin/env bash
# The venv of tools/milvus-load (tools/lib/venv.sh, in tools/.venv-milvus): the PyPI Milvus 2.3.5
# server (`milvus`, which bundles the server binary) and pymilvus 2.3.7, its client of the same line,
# with the versions of setuptools, marshmallow, numpy and pandas that pymilvus 2.3 still imports.
# Prints the venv's python.
set -euo pipefail
lib="$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)"
export QUIVER_VENV=.venv-milvus
exec "$lib/venv.sh" "milvus:milvus==2.3.5" "pymilvus:pymilvus==2.3.7" "pkg_resources:setuptools<70" \
    "marshmallow:marshmallow<4" "numpy:numpy<2" "pandas:pandas<2.3"
