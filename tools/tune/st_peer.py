"""The peer of tools/bench-tune: sentence-transformers all-MiniLM-L6-v2 with exact cosine search on
SciFact's judged test claims, nDCG@10 on the whole set and on the unseen subset (test claims none of
whose relevant documents is relevant to a training claim). Prints one JSON object.

    st_peer.py --data DIR --model DIR --scratch DIR

The corpus embeddings are cached in --scratch (corpus.st.f32): embedding 5,183 abstracts takes
minutes on a loaded machine. The claims are embedded on every run.
"""
import argparse
import json
import pathlib
import sys

import numpy as np

tools = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(tools / "lib"))
sys.path.insert(0, str(tools / "scifact"))
sys.path.insert(0, str(tools / "bm25"))
from scifact import document_text, load, ndcg10, rank_cosine, read_qrels  # noqa: E402
from peers import embed as peers_embed  # noqa: E402


def embed(texts, name, a):
    """peers.py's embedding (st_side.py in a child process), with the corpus cached across runs."""
    out = pathlib.Path(a.scratch) / f"{name}.st.f32"
    if name == "corpus" and out.exists() and out.stat().st_size == len(texts) * 384 * 4:
        return np.fromfile(out, dtype=np.float32).reshape(len(texts), -1)
    return peers_embed(texts, name, a)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--scratch", required=True)
    a = p.parse_args()
    a.batch_size, a.threads = 32, 2
    corpus, queries, qrels = load(a.data)
    trained = {d for docs in read_qrels(f"{a.data}/qrels_train.tsv").values() for d in docs}
    unseen = [q for q in queries if not (set(qrels[q["_id"]]) & trained)]
    ids = [d["_id"] for d in corpus]
    docs = embed([document_text(d) for d in corpus], "corpus", a)
    claims = embed([q["text"] for q in queries], "claims", a)
    ranked = {q["_id"]: [ids[i] for i in top] for q, top in zip(queries, rank_cosine(docs, claims, 10))}

    def mean(subset):
        return sum(ndcg10(ranked[q["_id"]], qrels[q["_id"]]) for q in subset) / len(subset)

    print(json.dumps({"peer": "sentence-transformers all-MiniLM-L6-v2, exact cosine", "dense_all": mean(queries),
                      "dense_unseen": mean(unseen), "queries": len(queries), "unseen": len(unseen)}, sort_keys=True))


if __name__ == "__main__":
    main()
