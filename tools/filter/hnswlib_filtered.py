"""hnswlib's filtered search (its filter functor) on the filters FilterBench wrote, same queries.

Reads <data>/wordnet.fvecs, <data>/wordnet_query.fvecs and <data>/filters.json (the allowed rows of
each filter and the exact filtered top-10 that FilterBench computed), builds hnswlib with M 16 and
efConstruction 200 (cosine), and for each filter reports recall@10, the fewest results a query got,
and single-threaded QPS (by CPU time, and by wall clock), next to unfiltered QPS. Prints one JSON object.
"""
import argparse, json, time
import numpy as np
import hnswlib


def fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].copy().view(np.float32)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--ef", type=int, default=64)
    args = p.parse_args()
    base = fvecs(f"{args.data}/wordnet.fvecs")
    spec = json.load(open(f"{args.data}/filters.json"))
    queries = fvecs(f"{args.data}/wordnet_query.fvecs")[: spec["queries"]]
    k = spec["k"]
    index = hnswlib.Index(space="cosine", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=16, ef_construction=200, random_seed=100)
    t = time.time()
    index.add_items(base, np.arange(len(base)), num_threads=2)
    build = time.time() - t
    index.set_ef(args.ef)
    index.set_num_threads(1)

    def run(allowed):
        out, t, w = [], time.process_time(), time.perf_counter()
        for q in queries:
            if allowed is None:
                labels, _ = index.knn_query(q, k=k)
            else:
                try:
                    labels, _ = index.knn_query(q, k=k, filter=lambda label: allowed[label])
                except RuntimeError:  # hnswlib raises when it finds fewer than k
                    labels = [[]]
            out.append(list(labels[0]))
        return out, time.process_time() - t, time.perf_counter() - w

    _, seconds, _ = run(None)
    unfiltered = len(queries) / seconds
    rows = []
    for f in spec["filters"]:
        allowed = np.zeros(len(base), dtype=bool)
        allowed[f["rows"]] = True
        got, seconds, wall = run(allowed)
        found = sum(len(set(t) & set(g)) for t, g in zip(f["truth"], got))
        expected = sum(len(t) for t in f["truth"])
        qps = len(queries) / seconds
        rows.append({"filter": f["filter"], "allowed": int(allowed.sum()), "recall": found / expected if expected else 1.0,
                     "fewest": min(len(g) for g in got), "qps": qps, "qps_wall": len(queries) / wall,
                     "qps_share": qps / unfiltered})
    print(json.dumps({"system": "hnswlib", "ef": args.ef, "build_seconds": build, "unfiltered_qps": unfiltered, "filters": rows}))


if __name__ == "__main__":
    main()
