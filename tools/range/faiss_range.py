"""The FAISS side of tools/bench-range: exact range search (IndexFlatIP.range_search) over the
WordNet vectors (unit-norm, so inner product = cosine), the oracle and the timing peer.

  faiss_range.py --base wordnet.fvecs --queries wordnet_query.fvecs --rows N --out DIR
                 --thresholds 0.9,0.95 --bounds 0.6,0.7,0.8 --threads 2

For the first N base rows: the self-join (every row a query against the N rows, each pair i < j
with inner product >= the lowest threshold), timed once by wall clock and process CPU time (an
exhaustive search costs the same at any threshold); for each threshold t its pairs are written
to DIR/faiss-pairs-N-t.bin (int32 LE i, int32 LE j, float32 LE score per pair). For each bound b:
the range search of the queries against the N rows, written to DIR/faiss-range-N-b.bin (per query:
int32 LE count, then count int32 LE ids). Prints one JSON object with the timings.
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import faiss


def fvecs(path, rows=None):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    m = raw.reshape(-1, d + 1)[:, 1:].copy().view(np.float32)
    return np.ascontiguousarray(m[:rows] if rows else m)


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--thresholds", default="0.9,0.95")
    ap.add_argument("--bounds", default="0.6,0.7,0.8")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)
    x = fvecs(a.base, a.rows)
    q = fvecs(a.queries)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    out = {"rows": int(x.shape[0]), "threads": a.threads, "faiss": faiss.__version__, "join": {}}
    # An exhaustive range search costs the same at any threshold (every pair is scored), so the
    # self-join runs once, timed, at the lowest threshold; the pairs of the higher ones are the
    # subsets scoring at least them. Files are named by each number as written, which RangeBench
    # reads back the same way.
    texts = sorted(a.thresholds.split(","), key=float)
    w0, c0 = time.perf_counter(), cpu()
    lims, dist, ids = index.range_search(x, float(texts[0]))
    wall, cpu_s = time.perf_counter() - w0, cpu() - c0
    # Each unordered pair once, i < j (the self-match and the mirrored pair dropped).
    rows = np.repeat(np.arange(x.shape[0], dtype=np.int64), np.diff(lims).astype(np.int64))
    keep = rows < ids
    rows, ids, dist = rows[keep], ids[keep], dist[keep]
    for text in texts:
        at = dist >= float(text)
        pairs = np.empty(int(at.sum()), dtype=[("i", "<i4"), ("j", "<i4"), ("s", "<f4")])
        pairs["i"], pairs["j"], pairs["s"] = rows[at], ids[at], dist[at]
        pairs.tofile(os.path.join(a.out, f"faiss-pairs-{x.shape[0]}-{text}.bin"))
        out["join"][text] = {"wall": wall, "cpu": cpu_s, "pairs": int(at.sum()), "timedAt": texts[0]}
        print(f"faiss range self-join {x.shape[0]} rows at {text}: {at.sum()} pairs; {wall:.1f} s wall, {cpu_s:.1f} s CPU (one join at {texts[0]})", file=sys.stderr)
    for text in ([] if a.bounds == "none" else a.bounds.split(",")):
        lims, dist, ids = index.range_search(q, float(text))
        with open(os.path.join(a.out, f"faiss-range-{x.shape[0]}-{text}.bin"), "wb") as f:
            for i in range(q.shape[0]):
                found = ids[lims[i]:lims[i + 1]].astype("<i4")
                np.array([found.size], dtype="<i4").tofile(f)
                found.tofile(f)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
