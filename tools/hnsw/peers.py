"""Runs the HNSW peers (hnswlib, FAISS IndexHNSWFlat) on an .fvecs data set and prints JSON in the
shape HNSWBench prints, so tools/hnsw/compare.py can put them side by side.

Same M and efConstruction as Quiver; single-threaded build and queries (plus a 2-thread build time);
queries go through each library's batch call with one thread, so no Python overhead per query.
Memory per vector = resident memory added by the single-threaded build / n (as HNSWBench measures it).
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def read_fvecs(path):
    raw = np.fromfile(path, dtype="<i4")
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].copy().view("<f4")


def read_ivecs(path):
    raw = np.fromfile(path, dtype="<i4")
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].copy()


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def recall(found, gt, k):
    return float(np.mean([len(set(f[:k]) & set(g[:k])) / k for f, g in zip(found, gt)]))


def timed_queries(search, q, min_seconds):
    # Best of 3 rounds, wall clock and this thread's CPU time (both libraries run a 1-thread batch in
    # the calling thread), as HNSWBench measures.
    best_wall = best_cpu = 0.0
    for _ in range(3):
        reps, t0, c0 = 0, time.perf_counter(), time.thread_time()
        while True:
            labels = search(q)
            reps += 1
            if time.perf_counter() - t0 >= min_seconds / 3:
                break
        best_wall = max(best_wall, reps * len(q) / (time.perf_counter() - t0))
        best_cpu = max(best_cpu, reps * len(q) / (time.thread_time() - c0))
    return labels, best_wall, best_cpu


def hnswlib_curve(index, queries, gt, args):
    curve = []
    for ef in args.ef:
        if ef < args.k:
            continue
        index.set_ef(ef)
        labels, qps, qpscpu = timed_queries(lambda q: index.knn_query(q, k=args.k, num_threads=1)[0], queries, args.min_seconds)
        curve.append({"ef": ef, "recall": recall(labels, gt, args.k), "qps": qps, "qps_cpu": qpscpu})
    return curve


def faiss_curve(index, queries, gt, args):
    import faiss
    faiss.omp_set_num_threads(1)
    curve = []
    for ef in args.ef:
        if ef < args.k:
            continue
        index.hnsw.efSearch = ef
        labels, qps, qpscpu = timed_queries(lambda q: index.search(q, args.k)[1], queries, args.min_seconds)
        curve.append({"ef": ef, "recall": recall(labels, gt, args.k), "qps": qps, "qps_cpu": qpscpu})
    return curve


def curve_of_saved(base, queries, gt, args):
    if args.system == "hnswlib":
        import hnswlib
        space = {"l2": "l2", "cosine": "cosine", "dot": "ip"}[args.metric]
        index = hnswlib.Index(space=space, dim=base.shape[1])
        index.load_index(args.load)
        return hnswlib_curve(index, queries, gt, args)
    import faiss
    if args.metric == "cosine":
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return faiss_curve(faiss.read_index(args.load), queries, gt, args)


def run_hnswlib(base, queries, gt, args):
    import hnswlib
    space = {"l2": "l2", "cosine": "cosine", "dot": "ip"}[args.metric]
    n, d = base.shape
    r0 = rss()
    index = hnswlib.Index(space=space, dim=d)
    index.init_index(max_elements=n, M=args.m, ef_construction=args.ef_construction, random_seed=100)
    index.set_num_threads(1)
    t, c = time.perf_counter(), time.thread_time()
    index.add_items(base, np.arange(n))
    build1, build1cpu = time.perf_counter() - t, time.thread_time() - c
    mem = (rss() - r0) / n
    curve = hnswlib_curve(index, queries, gt, args)
    if args.save:
        index.save_index(args.save)
    del index
    buildp = None
    if not args.skip_parallel:
        index = hnswlib.Index(space=space, dim=d)
        index.init_index(max_elements=n, M=args.m, ef_construction=args.ef_construction, random_seed=100)
        index.set_num_threads(os.cpu_count())
        t = time.perf_counter()
        index.add_items(base, np.arange(n))
        buildp = time.perf_counter() - t
    return {"system": "hnswlib", "build_seconds_1thread": build1, "build_cpu_seconds_1thread": build1cpu, "build_seconds_parallel": buildp,
            "memory_bytes_per_vector_rss": mem, "curve": curve}


def run_faiss(base, queries, gt, args):
    import faiss
    n, d = base.shape
    metric = faiss.METRIC_L2 if args.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    if args.metric == "cosine":
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    def build(threads):
        faiss.omp_set_num_threads(threads)
        index = faiss.IndexHNSWFlat(d, args.m, metric)
        index.hnsw.efConstruction = args.ef_construction
        t, c = time.perf_counter(), time.thread_time()
        index.add(base)
        return index, time.perf_counter() - t, time.thread_time() - c
    r0 = rss()
    index, build1, build1cpu = build(1)
    mem = (rss() - r0) / n
    curve = faiss_curve(index, queries, gt, args)
    if args.save:
        faiss.write_index(index, args.save)
    del index
    buildp = None if args.skip_parallel else build(os.cpu_count())[1]
    return {"system": "faiss", "build_seconds_1thread": build1, "build_cpu_seconds_1thread": build1cpu, "build_seconds_parallel": buildp,
            "memory_bytes_per_vector_rss": mem, "curve": curve, "faiss_version": faiss.__version__}


def simd_of(system):
    """The SIMD level the peer's kernels run: FAISS's dynamic dispatch level ($FAISS_SIMD_LEVEL forces a
    narrower one); hnswlib picks AVX-512 or AVX at run time among what its wheel was compiled with,
    and has no switch."""
    if system == "faiss":
        import faiss
        return faiss.SIMDConfig.get_level_name()
    return "not forced (hnswlib picks its widest at run time)"


def parse_args(systems):
    """The options of this script and of sq8_peers.py (the same data, build and curve options)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--system", choices=systems, required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--gt", required=True)
    ap.add_argument("--metric", default="l2", choices=["l2", "cosine", "dot"])
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ef", default="10,12,16,20,24,32,40,48,64,80,96,128,160,200,256")
    ap.add_argument("--min-seconds", type=float, default=0.5)
    ap.add_argument("--save", help="write the single-threaded build's index here")
    ap.add_argument("--load", help="only measure the search curve of an index saved with --save")
    ap.add_argument("--skip-parallel", action="store_true", help="skip the multi-threaded build")
    args = ap.parse_args()
    args.ef = [int(x) for x in args.ef.split(",")]
    return args


def main():
    args = parse_args(["hnswlib", "faiss"])
    base, queries, gt = read_fvecs(args.base), read_fvecs(args.queries), read_ivecs(args.gt)
    if args.load:
        out = {"system": args.system, "simd": simd_of(args.system), "curve": curve_of_saved(base, queries, gt, args)}
        print(json.dumps(out, sort_keys=True))
        return
    run = run_hnswlib if args.system == "hnswlib" else run_faiss
    out = run(base, queries, gt, args)
    out.update({"simd": simd_of(args.system), "n": base.shape[0], "dimension": base.shape[1], "metric": args.metric, "m": args.m,
                "ef_construction": args.ef_construction, "k": args.k})
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
