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


tools = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(tools / "lib"))
from scifact import document_text, embed_sentence_transformers, load, ndcg10, rank_cosine, read_qrels  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--scratch", required=True)
    a = p.parse_args()
    corpus, queries, qrels = load(a.data)
    trained = {d for docs in read_qrels(f"{a.data}/qrels_train.tsv").values() for d in docs}
    unseen = [q for q in queries if not (set(qrels[q["_id"]]) & trained)]
    ids = [d["_id"] for d in corpus]
    docs = embed_sentence_transformers([document_text(d) for d in corpus], "corpus", a.scratch, a.model, threads=2,
                                       kind="documents", reuse=True)
    claims = embed_sentence_transformers([q["text"] for q in queries], "claims", a.scratch, a.model, threads=2, kind="queries")
    ranked = {q["_id"]: [ids[i] for i in top] for q, top in zip(queries, rank_cosine(docs, claims, 10))}

    def mean(subset):
        return sum(ndcg10(ranked[q["_id"]], qrels[q["_id"]]) for q in subset) / len(subset)

    print(json.dumps({"peer": "sentence-transformers all-MiniLM-L6-v2, exact cosine", "dense_all": mean(queries),
                      "dense_unseen": mean(unseen), "queries": len(queries), "unseen": len(unseen)}, sort_keys=True))


if __name__ == "__main__":
    main()
