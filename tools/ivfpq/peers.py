"""FAISS IndexIVFPQ on an .fvecs data set, printing JSON in the shape IVFPQBench prints, so
tools/ivfpq/compare.py can put them side by side.

Same nlist, m, nbits (8) and k-means iterations as Quiver (coarse 20, PQ 25, 256 points per centroid);
training and add on all cores (as Quiver's); queries single-threaded through FAISS's batch call
(omp 1 thread), so no Python overhead per query. Re-ranking: IndexRefineFlat around the IVF-PQ with
k_factor = rerank / k (full vectors in memory, exact distances), the counterpart of Quiver's
re-ranking through a vector source.

--opq N also trains index_factory("OPQm,IVFnlist,PQm") (OPQMatrix with N alternations before the
IVF-PQ) and reports its training time and recall with and without re-ranking, beside Quiver's OPQ.
"""
import argparse
import json
import os
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


def recall(found, gt, k):
    return float(np.mean([len(set(f[:k]) & set(g[:k])) / k for f, g in zip(found, gt)]))


def timed(search, q, min_seconds):
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


def main():
    import faiss
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--gt", required=True)
    ap.add_argument("--metric", default="l2", choices=["l2", "cosine", "dot"])
    ap.add_argument("--nlist", type=int, default=100)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--rerank", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--nprobe", default="1,2,4,8,16,32,64,128")
    ap.add_argument("--min-seconds", type=float, default=0.5)
    ap.add_argument("--opq", type=int, default=0, help="also train FAISS's OPQ pipeline with this many alternations")
    ap.add_argument("--recall-seeds", type=int, default=0,
                    help="also report ADC recall per nprobe after training with this many other seeds")
    ap.add_argument("--loo", type=int, default=0,
                    help="with --recall-seeds: also leave-one-out ADC recall on N base rows (IVFPQBench's rule)")
    args = ap.parse_args()
    base, queries, gt = read_fvecs(args.base), read_fvecs(args.queries), read_ivecs(args.gt)
    n, d = base.shape
    if args.metric == "cosine":
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    fmetric = faiss.METRIC_L2 if args.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    nprobes = [int(x) for x in args.nprobe.split(",") if int(x) <= args.nlist]

    def make_ivfpq():
        quantizer = faiss.IndexFlatL2(d) if fmetric == faiss.METRIC_L2 else faiss.IndexFlatIP(d)
        ivf = faiss.IndexIVFPQ(quantizer, d, args.nlist, args.m, 8, fmetric)
        ivf.cp.niter = 20
        ivf.pq.cp.niter = 25
        return ivf, quantizer

    faiss.omp_set_num_threads(os.cpu_count())
    ivf, quantizer = make_ivfpq()
    t, c = time.perf_counter(), time.process_time()
    ivf.train(base)
    train_seconds, train_cpu_seconds = time.perf_counter() - t, time.process_time() - c
    # The refine wrapper adds to both the IVF-PQ and its flat store (the copy costs little).
    refine = faiss.IndexRefineFlat(ivf)
    t = time.perf_counter()
    refine.add(base)
    add_seconds = time.perf_counter() - t
    refine.k_factor = max(1.0, args.rerank / args.k)

    faiss.omp_set_num_threads(1)
    curve = []
    for p in nprobes:
        ivf.nprobe = p
        labels, qps, qpscpu = timed(lambda q: ivf.search(q, args.k)[1], queries, args.min_seconds)
        r = recall(labels, gt, args.k)
        labels, qps2, qpscpu2 = timed(lambda q: refine.search(q, args.k)[1], queries, args.min_seconds)
        curve.append({"nprobe": p, "recall": r, "qps": qps, "qps_cpu": qpscpu,
                      "recall_rerank": recall(labels, gt, args.k), "qps_rerank": qps2, "qps_rerank_cpu": qpscpu2})
    out = {"system": "faiss", "simd": faiss.SIMDConfig.get_level_name(), "faiss_version": faiss.__version__, "n": n, "dimension": d, "metric": args.metric,
           "nlist": args.nlist, "m": args.m, "nbits": 8, "k": args.k, "rerank": args.rerank,
           "train_seconds": train_seconds, "train_cpu_seconds": train_cpu_seconds, "add_seconds": add_seconds, "code_bytes_per_vector": ivf.code_size,
           "list_bytes_per_vector": ivf.code_size + 8,
           "precomputed_table": int(ivf.use_precomputed_table), "curve": curve}

    if args.recall_seeds:
        seed_recall, seed_loo = {}, {}
        loo_rows = np.arange(min(n, args.loo)) * (n // max(1, args.loo)) if args.loo else np.zeros(0, dtype=int)
        if len(loo_rows):
            flat = faiss.IndexFlatL2(d) if fmetric == faiss.METRIC_L2 else faiss.IndexFlatIP(d)
            flat.add(base)
            found = flat.search(base[loo_rows], args.k + 1)[1]
            loo_truth = [[i for i in f if i != r][:args.k] for f, r in zip(found, loo_rows)]
        for s in range(args.recall_seeds):
            faiss.omp_set_num_threads(os.cpu_count())
            ivf3, _ = make_ivfpq()
            ivf3.cp.seed = 1000 + s
            ivf3.pq.cp.seed = 2000 + s
            ivf3.train(base)
            ivf3.add(base)
            for p in nprobes:
                ivf3.nprobe = p
                seed_recall.setdefault(str(p), []).append(recall(ivf3.search(queries, args.k)[1], gt, args.k))
                if len(loo_rows):
                    found = ivf3.search(base[loo_rows], args.k + 1)[1]
                    found = [[i for i in f if i != r][:args.k] for f, r in zip(found, loo_rows)]
                    seed_loo.setdefault(str(p), []).append(recall(found, loo_truth, args.k))
        out["seed_recall"] = seed_recall
        if seed_loo:
            out["seed_loo_recall"], out["loo_queries"] = seed_loo, len(loo_rows)

    if args.opq:
        # FAISS's standard OPQ pipeline, index_factory("OPQm,IVFnlist,PQm"): the rotation is learned on the
        # vectors and applied before the coarse quantizer. Same effort as Quiver's OPQ: args.opq
        # alternations of 4 k-means iterations on at most 32,768 rows (FAISS's defaults: 50 on 65,536).
        faiss.omp_set_num_threads(os.cpu_count())
        opq = faiss.index_factory(d, f"OPQ{args.m},IVF{args.nlist},PQ{args.m}", fmetric)
        opq_matrix = faiss.downcast_VectorTransform(opq.chain.at(0))
        opq_matrix.niter = args.opq
        opq_matrix.niter_pq = 4
        opq_matrix.max_train_points = 32768
        ivf2 = faiss.downcast_index(faiss.extract_index_ivf(opq))
        ivf2.cp.niter = 20
        ivf2.pq.cp.niter = 25
        t = time.perf_counter()
        opq.train(base)
        opq_train = time.perf_counter() - t
        opq.add(base)
        refine2 = faiss.IndexRefineFlat(opq, faiss.swig_ptr(base))
        refine2.k_factor = max(1.0, args.rerank / args.k)
        faiss.omp_set_num_threads(1)
        opq_curve = []
        for p in nprobes:
            ivf2.nprobe = p
            opq_curve.append({"nprobe": p, "recall": recall(opq.search(queries, args.k)[1], gt, args.k),
                              "recall_rerank": recall(refine2.search(queries, args.k)[1], gt, args.k)})
        out["opq"] = {"iterations": args.opq, "train_seconds": opq_train, "curve": opq_curve}
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
