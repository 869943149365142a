"""SciFact for the Python side of the benchmarks: the data, BEIR's nDCG@10, exact cosine ranking and
reciprocal-rank fusion, shared by tools/bm25, tools/encoder and tools/scifact.

Scripts elsewhere in tools/ import it after putting this folder on sys.path:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
"""
import json
import math
import pathlib
import subprocess
import sys


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_qrels(path):
    """{query id: {document id: grade}} for the positive judgments of a BEIR qrels TSV (with header)."""
    qrels = {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            q, d, s = line.rstrip("\n").split("\t")
            if int(s) > 0:
                qrels.setdefault(q, {})[d] = int(s)
    return qrels


def load(data):
    """(corpus, the judged test queries in file order, qrels) of the SciFact folder `data`."""
    corpus = read_jsonl(f"{data}/corpus.jsonl")
    qrels = read_qrels(f"{data}/qrels_test.tsv")
    queries = [q for q in read_jsonl(f"{data}/queries.jsonl") if q["_id"] in qrels]
    return corpus, queries, qrels


def document_text(d):
    """A document as every side indexes and embeds it: title + " " + text."""
    return (d.get("title") or "") + " " + (d.get("text") or "")


def ndcg10(ranked, judged):
    """nDCG@10 as trec_eval/BEIR: gain = grade, discount 1/log2(rank + 1), ideal from the judgments."""
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sum(r / math.log2(i + 2) for i, r in enumerate(sorted(judged.values(), reverse=True)[:10]))
    return dcg / ideal if ideal > 0 else 0.0


def mean_ndcg10(rankings, queries, qrels):
    """The mean nDCG@10 of `rankings` (one ranked id list per query of `queries`)."""
    return sum(ndcg10(r, qrels[q["_id"]]) for r, q in zip(rankings, queries)) / len(queries)


def rank_cosine(corpus_vectors, query_vectors, k):
    """Row indexes of the k most cosine-similar corpus rows for each query row, best first (exact;
    stable on ties). Both are float32 arrays of shape (n, d), normalized here."""
    import numpy as np

    corpus_vectors = corpus_vectors / np.maximum(np.linalg.norm(corpus_vectors, axis=1, keepdims=True), 1e-12)
    query_vectors = query_vectors / np.maximum(np.linalg.norm(query_vectors, axis=1, keepdims=True), 1e-12)
    scores = query_vectors @ corpus_vectors.T
    return [list(np.argsort(-row, kind="stable")[:k]) for row in scores]


def embed_sentence_transformers(texts, name, scratch, model, threads, batch_size=None, kind=None, reuse=False):
    """Vectors of `texts` from sentence-transformers (tools/encoder/st_side.py in a child process),
    written to `scratch`/`name`.st.f32; with `reuse`, a file of the right size there is read back
    instead. `batch_size` and `kind` (documents or queries) go to st_side.py when given."""
    import numpy as np

    scratch = pathlib.Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    source, out = scratch / f"{name}.jsonl", scratch / f"{name}.st.f32"
    if reuse and out.exists() and out.stat().st_size == len(texts) * 384 * 4:
        return np.fromfile(out, dtype=np.float32).reshape(len(texts), -1)
    with open(source, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    command = [sys.executable, str(pathlib.Path(__file__).resolve().parents[1] / "encoder" / "st_side.py"), "embed",
               "--model", model, "--texts", str(source), "--out", str(out), "--threads", str(threads)]
    if batch_size is not None:
        command += ["--batch-size", str(batch_size)]
    if kind is not None:
        command += ["--kind", kind]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return np.fromfile(out, dtype=np.float32).reshape(len(texts), -1)


def reciprocal_rank_fusion(lists, k=60, depth=100):
    """Fuses ranked id lists: score(d) = sum over lists of 1 / (k + rank), rank from 1, each list cut at
    `depth`; ties broken by id so the order is deterministic."""
    scores = {}
    for ranked in lists:
        for rank, d in enumerate(ranked[:depth], start=1):
            scores[d] = scores.get(d, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda d: (-scores[d], d))
