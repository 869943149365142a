"""bm25s on SciFact with the same settings as BM25Bench, printing one JSON line per run.

    python tools/bm25/bm25s_scifact.py --data DIR [--k1 1.5] [--b 0.75]
        [--stopwords english|none] [--stem] [--min-length 1|2] [--tokens FILE]

Without --tokens, bm25s tokenizes with its own tokenizer: lowercase, the regex \\w\\w+ (min length 2,
bm25s's default) or \\w+ (min length 1), bm25s's English stop list (the same 33 words as Quiver's),
and PyStemmer's Snowball English when --stem. With --tokens, it indexes exactly the terms that
BM25Bench --dump-tokens wrote, so any difference left is in the ranking arithmetic alone.
nDCG@10 is computed as in BM25Bench (linear gain, log2 discount, no identical-id removal).
"""
import argparse
import json
import math
import time

import bm25s


def load(data):
    corpus = [json.loads(l) for l in open(f"{data}/corpus.jsonl", encoding="utf-8") if l.strip()]
    queries = [json.loads(l) for l in open(f"{data}/queries.jsonl", encoding="utf-8") if l.strip()]
    qrels = {}
    with open(f"{data}/qrels_test.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            q, d, s = line.rstrip("\n").split("\t")
            qrels.setdefault(q, {})[d] = int(s)
    queries = [q for q in queries if q["_id"] in qrels]
    return corpus, queries, qrels


def ndcg10(ranked, judged):
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sum(r / math.log2(i + 2) for i, r in enumerate(sorted(judged.values(), reverse=True)[:10]))
    return dcg / ideal if ideal > 0 else 0.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--k1", type=float, default=1.5)
    p.add_argument("--b", type=float, default=0.75)
    p.add_argument("--stopwords", choices=["english", "none"], default="english")
    p.add_argument("--stem", action="store_true")
    p.add_argument("--min-length", type=int, choices=[1, 2], default=2)
    p.add_argument("--tokens")
    a = p.parse_args()

    corpus, queries, qrels = load(a.data)
    ids = [d["_id"] for d in corpus]
    t0 = time.perf_counter()
    if a.tokens:
        dump = json.load(open(a.tokens, encoding="utf-8"))
        assert dump["corpusIDs"] == ids, "the token dump is of another corpus"
        by_query = dict(zip(dump["queryIDs"], dump["queries"]))
        corpus_tokens = dump["corpus"]
        query_tokens = [by_query[q["_id"]] for q in queries]
        setting = "quiver tokens: " + dump["analyzer"]
    else:
        stemmer = None
        if a.stem:
            import Stemmer
            stemmer = Stemmer.Stemmer("english")
        pattern = r"(?u)\b\w\w+\b" if a.min_length == 2 else r"(?u)\b\w+\b"
        stop = "english" if a.stopwords == "english" else None
        kw = dict(lower=True, token_pattern=pattern, stopwords=stop, stemmer=stemmer, return_ids=False, show_progress=False)
        corpus_tokens = bm25s.tokenize([d["title"] + " " + d["text"] for d in corpus], **kw)
        query_tokens = bm25s.tokenize([q["text"] for q in queries], **kw)
        setting = f"bm25s tokenizer: stop={a.stopwords} stem={'snowball' if a.stem else 'none'} min={a.min_length}"
    retriever = bm25s.BM25(k1=a.k1, b=a.b)  # method "lucene": idf = ln(1 + (N - df + 0.5) / (df + 0.5))
    retriever.index(corpus_tokens, show_progress=False)
    index_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    # Queries whose every term is unknown would raise in bm25s; they score nothing, as in Quiver.
    results = []
    for toks in query_tokens:
        known = [t for t in toks if t in retriever.vocab_dict]
        if not known:
            results.append([])
            continue
        docs, _ = retriever.retrieve([known], k=10, show_progress=False)
        results.append([ids[i] for i in docs[0]])
    query_seconds = time.perf_counter() - t1
    score = sum(ndcg10(r, qrels[q["_id"]]) for r, q in zip(results, queries)) / len(queries)
    print(json.dumps({"setting": setting, "ndcg10": score,
                      "docs_per_s": round(len(corpus) / index_seconds), "queries_per_s": round(len(queries) / query_seconds)}))


if __name__ == "__main__":
    main()
