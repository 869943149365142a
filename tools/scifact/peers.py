"""The peers of tools/bench-scifact on SciFact's 300 judged test claims; prints one JSON object.

    peers.py --data DIR --model DIR --scratch DIR [--k1 1.5] [--b 0.75] [--depth 100] [--rrf-k 60]
             [--threads 2] [--batch-size 32]

dense   sentence-transformers all-MiniLM-L6-v2 loaded from the local folder --model (no network),
        embedding through tools/encoder/st_side.py; exact cosine search (tools/lib/scifact.py).
bm25    bm25s with the given k1 and b and Quiver's analyzer set up alike (English stop words,
        PyStemmer's Snowball English, words of any length), through tools/bm25/bm25s_scifact.py.
hybrid  reciprocal-rank fusion (k --rrf-k) of the top --depth of the two lists above: the peers'
        counterpart of Quiver's default hybrid search.
"""
import argparse
import json
import pathlib
import sys
import time


tools = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(tools / "lib"))
sys.path.insert(0, str(tools / "bm25"))
from scifact import document_text, embed_sentence_transformers, load, mean_ndcg10, rank_cosine, reciprocal_rank_fusion  # noqa: E402
from bm25s_scifact import rank as bm25s_rank  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--scratch", required=True)
    p.add_argument("--k1", type=float, default=1.5)
    p.add_argument("--b", type=float, default=0.75)
    p.add_argument("--depth", type=int, default=100)
    p.add_argument("--rrf-k", type=int, default=60)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    a = p.parse_args()

    corpus, queries, qrels = load(a.data)
    ids = [d["_id"] for d in corpus]
    t = time.perf_counter()
    doc_vectors = embed_sentence_transformers([document_text(d) for d in corpus], "corpus", a.scratch, a.model, a.threads, a.batch_size)
    query_vectors = embed_sentence_transformers([q["text"] for q in queries], "queries", a.scratch, a.model, a.threads, a.batch_size)
    dense = [[ids[i] for i in top] for top in rank_cosine(doc_vectors, query_vectors, a.depth)]
    dense_seconds = time.perf_counter() - t
    lexical, (setting, _, _) = bm25s_rank(corpus, queries, a.k1, a.b, stopwords="english", stem=True, min_length=1, k=a.depth)
    hybrid = [reciprocal_rank_fusion([d, l], k=a.rrf_k, depth=a.depth) for d, l in zip(dense, lexical)]
    print(json.dumps({
        "queries": len(queries),
        "dense": mean_ndcg10(dense, queries, qrels), "dense_peer": "sentence-transformers all-MiniLM-L6-v2, exact cosine",
        "dense_seconds": dense_seconds,
        "bm25": mean_ndcg10(lexical, queries, qrels), "bm25_peer": f"bm25s k1 {a.k1} b {a.b}, {setting}",
        "hybrid": mean_ndcg10(hybrid, queries, qrels), "hybrid_peer": f"RRF k {a.rrf_k} of the top {a.depth} of both",
    }, sort_keys=True))


if __name__ == "__main__":
    main()
