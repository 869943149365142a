"""nDCG@10 on SciFact test from precomputed vectors (exact cosine search, vectors are L2-normalized
by both encoders; normalized again here so the search is cosine whatever the input).

  eval_scifact.py --ids ids.json --qrels qrels_test.tsv --corpus corpus.f32 --queries queries.f32 [--dim 384]

nDCG@10 as trec_eval/pytrec_eval (BEIR): gain = relevance grade, discount 1/log2(rank + 1), ideal DCG
from the judged relevant documents, averaged over the queries that have judgments. Prints JSON.
"""
import argparse
import json
import math

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--ids", required=True)
parser.add_argument("--qrels", required=True)
parser.add_argument("--corpus", required=True)
parser.add_argument("--queries", required=True)
parser.add_argument("--dim", type=int, default=384)
parser.add_argument("--k", type=int, default=10)
args = parser.parse_args()

ids = json.load(open(args.ids))
corpus = np.fromfile(args.corpus, dtype=np.float32).reshape(-1, args.dim)
queries = np.fromfile(args.queries, dtype=np.float32).reshape(-1, args.dim)
assert corpus.shape[0] == len(ids["corpus"]) and queries.shape[0] == len(ids["queries"])
corpus /= np.maximum(np.linalg.norm(corpus, axis=1, keepdims=True), 1e-12)
queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)

qrels = {}
with open(args.qrels) as f:
    next(f)
    for line in f:
        q, d, s = line.strip().split("\t")
        if int(s) > 0:
            qrels.setdefault(q, {})[d] = int(s)

scores = queries @ corpus.T
total, n = 0.0, 0
for qi, qid in enumerate(ids["queries"]):
    if qid not in qrels:
        continue
    top = np.argsort(-scores[qi], kind="stable")[: args.k]
    rel = qrels[qid]
    dcg = sum(rel.get(ids["corpus"][d], 0) / math.log2(r + 2) for r, d in enumerate(top))
    ideal = sorted(rel.values(), reverse=True)[: args.k]
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    total += dcg / idcg
    n += 1
print(json.dumps({"ndcg_at_10": total / n, "queries": n}))
