"""The 8-bit HNSW peers of tools/bench-hnsw-sq8: FAISS IndexHNSWSQ (QT_8bit, per-dimension ranges
trained on the data) and usearch's i8 index, on an .fvecs data set; prints JSON in HNSWBench's shape.

Build: every core (as Quiver's float32 graph that the sq8 index quantizes). Queries: one thread, each
library's batch call. Memory per vector: resident memory the build added / n (RSS), and what the index
itself accounts for (FAISS: codes + links + levels + offsets; usearch: memory_usage()).
"""
import argparse
import json
import os
import time

import numpy as np

from peers import parse_args, read_fvecs, read_ivecs, recall, rss, timed_queries


def faiss_index(base, args):
    import faiss
    d = base.shape[1]
    metric = faiss.METRIC_L2 if args.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, args.m, metric)
    index.hnsw.efConstruction = args.ef_construction
    index.train(base)
    index.add(base)
    return index


def faiss_accounted(index):
    import faiss
    h = index.hnsw
    links = faiss.vector_to_array(h.neighbors).nbytes
    side = faiss.vector_to_array(h.levels).nbytes + faiss.vector_to_array(h.offsets).nbytes
    return index.ntotal * index.storage.sa_code_size() + links + side


def usearch_index(base, args, threads):
    from usearch.index import Index
    metric = {"l2": "l2sq", "cosine": "cos", "dot": "ip"}[args.metric]
    index = Index(ndim=base.shape[1], metric=metric, dtype="i8", connectivity=args.m,
                  expansion_add=args.ef_construction, expansion_search=64)
    index.add(np.arange(base.shape[0]), base, threads=threads)
    return index


def curve(system, index, queries, gt, args):
    out = []
    for ef in args.ef:
        if ef < args.k:
            continue
        if system == "faiss-sq8":
            index.hnsw.efSearch = ef
            search = lambda q: index.search(q, args.k)[1]
        else:
            index.expansion_search = ef
            search = lambda q: index.search(q, args.k, threads=1).keys
        labels, qps, qpscpu = timed_queries(search, queries, args.min_seconds)
        out.append({"ef": ef, "recall": recall(labels, gt, args.k), "qps": qps, "qps_cpu": qpscpu})
    return out


def main():
    args = parse_args(["faiss-sq8", "usearch-i8"])
    base, queries, gt = read_fvecs(args.base), read_fvecs(args.queries), read_ivecs(args.gt)
    if args.metric == "cosine" and args.system == "faiss-sq8":
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    n = base.shape[0]
    if args.load:
        if args.system == "faiss-sq8":
            import faiss
            faiss.omp_set_num_threads(1)
            index = faiss.read_index(args.load)
        else:
            from usearch.index import Index
            index = Index.restore(args.load)
        print(json.dumps({"system": args.system, "n": n, "curve": curve(args.system, index, queries, gt, args)}, sort_keys=True))
        return
    threads = os.cpu_count()
    r0 = rss()
    t = time.perf_counter()
    if args.system == "faiss-sq8":
        import faiss
        faiss.omp_set_num_threads(threads)
        index = faiss_index(base, args)
        build = time.perf_counter() - t
        accounted = faiss_accounted(index)
        version = faiss.__version__
        faiss.omp_set_num_threads(1)
        if args.save:
            faiss.write_index(index, args.save)
    else:
        import usearch
        index = usearch_index(base, args, threads)
        build = time.perf_counter() - t
        accounted = index.memory_usage
        version = usearch.__version__
        if args.save:
            index.save(args.save)
    mem = (rss() - r0) / n
    print(json.dumps({"system": args.system, "n": n, "dimension": base.shape[1], "metric": args.metric, "m": args.m,
                      "ef_construction": args.ef_construction, "build_seconds_parallel": build, "build_threads": threads,
                      "memory_bytes_per_vector_rss": mem, "memory_bytes_per_vector_accounted": accounted / n,
                      "version": version}, sort_keys=True))


if __name__ == "__main__":
    main()
