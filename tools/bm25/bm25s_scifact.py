"""bm25s on SciFact (or a set in its layout) with the same settings as BM25Bench, printing one JSON
line per run.

    python tools/bm25/bm25s_scifact.py --data DIR [--k1 1.5] [--b 0.75]
        [--stopwords english|none] [--stem] [--min-length 1|2] [--tokens FILE] [--compare FILE]

Without --tokens, bm25s tokenizes with its own tokenizer: lowercase, the regex \\w\\w+ (min length 2,
bm25s's default) or \\w+ (min length 1), bm25s's English stop list (the same 33 words as Quiver's),
and PyStemmer's Snowball English when --stem. With --tokens, it indexes exactly the terms that
BM25Bench --dump-tokens wrote, so any difference left is in the ranking arithmetic alone.
nDCG@10 is computed as in BM25Bench (linear gain, log2 discount, no identical-id removal), by
tools/lib/scifact.py; a set without qrels_test.tsv runs every query and reports no nDCG.
Query throughput is by the process's CPU time, over passes of every query (one query per
`retrieve` call, as a user searching one query at a time) repeated until a CPU second is measured;
queries are tokenized before the clock starts. --compare FILE (BM25Bench --results) adds the mean
share of each query's top 10 that both systems return ("overlap10").
"""
import argparse
import json
import pathlib
import sys
import time

import bm25s

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from scifact import document_text, load, mean_ndcg10, read_jsonl  # noqa: E402


def rank(corpus, queries, k1, b, stopwords="english", stem=False, min_length=2, tokens=None, k=10):
    """bm25s's top `k` corpus ids for each query, and (setting, index seconds, query seconds).
    `tokens`: the path of a BM25Bench --dump-tokens file, whose terms are indexed as they are."""
    ids = [d["_id"] for d in corpus]
    t0 = time.perf_counter()
    if tokens:
        dump = json.load(open(tokens, encoding="utf-8"))
        assert dump["corpusIDs"] == ids, "the token dump is of another corpus"
        by_query = dict(zip(dump["queryIDs"], dump["queries"]))
        corpus_tokens = dump["corpus"]
        query_tokens = [by_query[q["_id"]] for q in queries]
        setting = "quiver tokens: " + dump["analyzer"]
    else:
        stemmer = None
        if stem:
            import Stemmer
            stemmer = Stemmer.Stemmer("english")
        pattern = r"(?u)\b\w\w+\b" if min_length == 2 else r"(?u)\b\w+\b"
        stop = "english" if stopwords == "english" else None
        kw = dict(lower=True, token_pattern=pattern, stopwords=stop, stemmer=stemmer, return_ids=False, show_progress=False)
        corpus_tokens = bm25s.tokenize([document_text(d) for d in corpus], **kw)
        query_tokens = bm25s.tokenize([q["text"] for q in queries], **kw)
        setting = f"bm25s tokenizer: stop={stopwords} stem={'snowball' if stem else 'none'} min={min_length}"
    retriever = bm25s.BM25(k1=k1, b=b)  # method "lucene": idf = ln(1 + (N - df + 0.5) / (df + 0.5))
    retriever.index(corpus_tokens, show_progress=False)
    index_seconds = time.perf_counter() - t0
    # Queries whose every term is unknown would raise in bm25s; they score nothing, as in Quiver.
    known = [[t for t in toks if t in retriever.vocab_dict] for toks in query_tokens]
    passes, seconds = 0, 0.0
    while seconds < 1 and passes < 1000:
        t1 = time.process_time()
        results = []
        for toks in known:
            if not toks:
                results.append([])
                continue
            docs, _ = retriever.retrieve([toks], k=min(k, len(ids)), show_progress=False)
            results.append([ids[i] for i in docs[0]])
        seconds += time.process_time() - t1
        passes += 1
    return results, (setting, index_seconds, seconds / passes)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--k1", type=float, default=1.5)
    p.add_argument("--b", type=float, default=0.75)
    p.add_argument("--stopwords", choices=["english", "none"], default="english")
    p.add_argument("--stem", action="store_true")
    p.add_argument("--min-length", type=int, choices=[1, 2], default=2)
    p.add_argument("--tokens")
    p.add_argument("--compare")
    a = p.parse_args()

    if pathlib.Path(a.data, "qrels_test.tsv").exists():
        corpus, queries, qrels = load(a.data)
    else:
        corpus, queries, qrels = read_jsonl(f"{a.data}/corpus.jsonl"), read_jsonl(f"{a.data}/queries.jsonl"), None
    results, (setting, index_seconds, query_seconds) = rank(corpus, queries, a.k1, a.b, a.stopwords, a.stem,
                                                             a.min_length, a.tokens)
    out = {"setting": setting, "ndcg10": mean_ndcg10(results, queries, qrels) if qrels else None,
           "docs_per_s": round(len(corpus) / index_seconds), "queries_per_s": round(len(queries) / query_seconds)}
    if a.compare:
        theirs = json.load(open(a.compare, encoding="utf-8"))
        assert theirs["queryIDs"] == [q["_id"] for q in queries], "the results file is of other queries"
        out["overlap10"] = sum(len(set(x[:10]) & set(y[:10])) / max(1, min(10, max(len(x), len(y))))
                               for x, y in zip(results, theirs["results"])) / len(queries)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
