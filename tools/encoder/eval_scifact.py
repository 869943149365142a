"""nDCG@10 on SciFact test from precomputed vectors (exact cosine search, vectors are L2-normalized
by both encoders; normalized again here so the search is cosine whatever the input).

  eval_scifact.py --ids ids.json --qrels qrels_test.tsv --corpus corpus.f32 --queries queries.f32 [--dim 384]

nDCG@10 as trec_eval/pytrec_eval (BEIR): gain = relevance grade, discount 1/log2(rank + 1), ideal DCG
from the judged relevant documents, averaged over the queries that have judgments (tools/lib/scifact.py).
Prints JSON.
"""
import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from scifact import ndcg10, rank_cosine, read_qrels  # noqa: E402

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
qrels = read_qrels(args.qrels)

judged = [qi for qi, qid in enumerate(ids["queries"]) if qid in qrels]
ranked = rank_cosine(corpus, queries[judged], args.k)
total = sum(ndcg10([ids["corpus"][d] for d in top], qrels[ids["queries"][qi]]) for qi, top in zip(judged, ranked))
print(json.dumps({"ndcg_at_10": total / len(judged), "queries": len(judged)}))
