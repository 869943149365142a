#!/usr/bin/env bash
# The venv of tools/bench-peers (tools/lib/venv.sh, in tools/.venv-peers): the embedded vector
# databases Quiver is compared with, each at a pinned PyPI version, and what the driver needs.
# DuckDB is pinned to 1.4.4 because its vss extension comes from PyPI as duckdb-ext-vss for that
# release (DuckDB's own INSTALL would download it from outside PyPI); Python's sqlite3 here cannot
# load extensions, so sqlite-vec runs in pysqlite3-binary's SQLite. Prints the venv's python.
set -euo pipefail
lib="$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)"
export QUIVER_VENV=.venv-peers
exec "$lib/venv.sh" "numpy:numpy==2.4.6" "psutil:psutil==7.2.2" "matplotlib:matplotlib==3.11.2" \
    "chromadb:chromadb==1.5.9" "lancedb:lancedb==0.40.0" "milvus_lite:milvus-lite==3.2.2" "pymilvus:pymilvus==3.0.2" \
    "qdrant_client:qdrant-client==1.20.0" "usearch:usearch==2.26.6" "sqlite_vec:sqlite-vec==0.1.9" \
    "pysqlite3:pysqlite3-binary==0.5.4.post2" "duckdb:duckdb==1.4.4" "duckdb_ext:duckdb-ext-vss==1.4.4.20260205"
