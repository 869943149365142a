"""The peer of Benchmarks/ShapeBench: what an hnswlib user writes for diversity and grouping.

hnswlib (M 16, efConstruction 200, cosine, ef 64 or the depth asked when larger, as Quiver) on the
WordNet-gloss embeddings, single-threaded queries, and in numpy / Python around it: MMR with
diversity 0.5 over the best 50 (vectors read from the in-memory array, the same formula and
relevance as Quiver's: cosine score, largest cosine to the picked ones), and grouping by the
lexicographer file (an in-memory array) with the same walk and the same deeper rounds (4 x k x size
candidates, then 4 times as many, at most 10,000). Modes run in turn, for several rounds; the median
round's CPU time per query (time.process_time) is printed per mode. Prints one JSON object.
"""
import argparse, json, os, sys, time
import numpy as np
import hnswlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "filter"))
from hnswlib_filtered import fvecs  # noqa: E402  (the .fvecs reader of the filter benchmark)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    base = fvecs(f"{args.data}/wordnet.fvecs")
    queries = fvecs(f"{args.data}/wordnet_query.fvecs")[: args.queries]
    lex = np.full(len(base), -1, dtype=np.int64)
    with open(f"{args.data}/wordnet.meta.tsv") as f:
        next(f)
        for line in f:
            cells = line.rstrip("\n").split("\t")
            if cells[0] == "base" and int(cells[1]) < len(base):
                lex[int(cells[1])] = int(cells[4])
    unit = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-30)
    index = hnswlib.Index(space="cosine", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=16, ef_construction=200, random_seed=100)
    t = time.time()
    index.add_items(base, np.arange(len(base)), num_threads=2)
    build = time.time() - t
    index.set_num_threads(1)
    k = 10

    def knn(q, depth):
        index.set_ef(max(64, depth))
        labels, distances = index.knn_query(q, k=min(depth, len(base)))
        return labels[0], 1 - distances[0]  # cosine scores

    def mmr(q, diversity=0.5, candidates=50):
        labels, scores = knn(q, candidates)
        v = unit[labels]
        picked, taken = [], np.zeros(len(labels), dtype=bool)
        redundancy = np.zeros(len(labels))
        for _ in range(min(k, len(labels))):
            value = (1 - diversity) * scores - diversity * redundancy
            value[taken] = -np.inf
            best = int(np.argmax(value))
            picked.append(best)
            taken[best] = True
            s = v @ v[best]
            redundancy = s if len(picked) == 1 else np.maximum(redundancy, s)
        return labels[picked]

    def groups(q, size):
        depth = min(10_000, 4 * k * size)
        while True:
            labels, _ = knn(q, depth)
            members, order = {}, []
            for label in labels:
                value = lex[label]
                if value < 0:
                    continue
                if value not in members:
                    if len(order) == k:
                        continue
                    order.append(value)
                    members[value] = []
                if len(members[value]) < size:
                    members[value].append(label)
            full = len(order) == k and all(len(m) == size for m in members.values())
            if full or len(labels) < depth or depth == 10_000:
                return [(g, members[g]) for g in order]
            depth = min(10_000, depth * 4)

    modes = {
        "plain k 10": lambda q: knn(q, 10),
        "plain k 50": lambda q: knn(q, 50),
        "MMR 0.5 over 50": mmr,
        "group by lex, 10 x 1": lambda q: groups(q, 1),
        "group by lex, 10 x 3": lambda q: groups(q, 3),
    }
    for q in queries[:20]:
        for run in modes.values():
            run(q)
    seconds = {name: [] for name in modes}
    for _ in range(args.rounds):
        for name, run in modes.items():
            t = time.process_time()
            for q in queries:
                run(q)
            seconds[name].append((time.process_time() - t) / len(queries))
    out = {"build_seconds": build, "queries": len(queries), "rounds": args.rounds, "ms_cpu": {}}
    plain = sorted(seconds["plain k 10"])[args.rounds // 2]
    for name, s in seconds.items():
        m = sorted(s)[args.rounds // 2]
        out["ms_cpu"][name] = 1000 * m
        print(f"{name:22s} {1000 * m:8.3f} ms CPU per query  {m / plain:5.2f}x plain k 10", flush=True)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
