"""Builds the second real 384-d text ANN data set of the HNSW and IVF-PQ benchmarks (issue 15) from
SciFact (../shared/data/scifact): the corpus abstracts split into sentences, embedded by Quiver's own
encoder (all-MiniLM-L6-v2 through Benchmarks/EncoderBench, float32), with SciFact's claims as queries.

Input (--scifact): corpus.jsonl (one abstract a line: _id, title, text), queries.jsonl (test claims),
queries_train.jsonl (train claims).

Output (in --out, default Benchmarks/data/):
- scifact-sentences.fvecs             base vectors: one per distinct sentence, unit-norm float32
- scifact-sentences_query.fvecs       the claims (test, then train; distinct; at most --queries), unit-norm
- scifact-sentences_groundtruth.ivecs exact cosine top-100 of each query among the base rows (0-based),
                                      ties by row
- scifact-sentences.meta.tsv          one line per row: set (base|query), row, source id (abstract id and
                                      sentence number, or claim id), the text
.fvecs/.ivecs as wordnet's (../shared/data/README.md: int32 LE dimension, then the values, per row).

Sentences: each abstract's text is split after '.', '!' or '?' followed by white space and a capital,
digit or opening bracket, except after common abbreviations (e.g., i.e., et al., Fig., vs., ...);
sentences of fewer than 4 words are dropped, and exact repeats are kept once (in corpus order). When
more than --max-sentences remain, the first --max-sentences are kept (bounds the embedding time).

Steps (each a subcommand, run in order by tools/build-scifact-sentences-data):
  split   writes work/sentences.jsonl and work/claims.jsonl (one JSON string a line) + their ids
  finish  reads work/sentences.f32 and work/claims.f32 (raw float32 rows from EncoderBench embed),
          normalizes, computes the ground truth, writes the outputs above
"""
import argparse
import json
import os
import re
import sys

import numpy as np

from build_wordnet_data import write_fvecs, write_ivecs  # the same .fvecs/.ivecs writers

DIM = 384
ABBREVIATIONS = {"e.g.", "i.e.", "al.", "fig.", "figs.", "vs.", "approx.", "ca.", "cf.", "etc.", "no.", "dr.",
                 "mr.", "mrs.", "ms.", "st.", "vol.", "eq.", "ref.", "refs.", "resp.", "incl.", "min.", "max."}
# A candidate boundary: sentence-ending punctuation, white space, then what can begin a sentence.
BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"'])")


def split_sentences(text):
    pieces = BOUNDARY.split(text.strip())
    sentences = []
    for piece in pieces:
        piece = " ".join(piece.split())
        if sentences:
            last_word = sentences[-1].rsplit(" ", 1)[-1].lower()
            if last_word in ABBREVIATIONS or re.fullmatch(r"[a-z]\.", last_word):
                sentences[-1] += " " + piece
                continue
        sentences.append(piece)
    return sentences


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise SystemExit(f"{path}:{number}: not JSON ({e})")


def write_lines(path, texts):
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")


def split(args):
    seen, sentences, sentence_ids = set(), [], []
    abstracts = 0
    for doc in read_jsonl(os.path.join(args.scifact, "corpus.jsonl")):
        abstracts += 1
        for i, s in enumerate(split_sentences(doc.get("text", ""))):
            if len(s.split()) < 4 or s in seen:
                continue
            seen.add(s)
            sentences.append(s)
            sentence_ids.append(f"{doc['_id']}:{i}")
    total = len(sentences)
    if total > args.max_sentences:
        sentences, sentence_ids = sentences[:args.max_sentences], sentence_ids[:args.max_sentences]
        print(f"kept the first {args.max_sentences:,} of {total:,} sentences", file=sys.stderr)
    claims, claim_ids, seen_claims = [], [], set()
    for name in ("queries.jsonl", "queries_train.jsonl"):
        for q in read_jsonl(os.path.join(args.scifact, name)):
            text = " ".join(q["text"].split())
            if text and text not in seen_claims and len(claims) < args.queries:
                seen_claims.add(text)
                claims.append(text)
                claim_ids.append(q["_id"])
    os.makedirs(args.work, exist_ok=True)
    write_lines(os.path.join(args.work, "sentences.jsonl"), sentences)
    write_lines(os.path.join(args.work, "claims.jsonl"), claims)
    write_lines(os.path.join(args.work, "sentence_ids.jsonl"), sentence_ids)
    write_lines(os.path.join(args.work, "claim_ids.jsonl"), claim_ids)
    print(f"scifact: {abstracts:,} abstracts -> {len(sentences):,} sentences (of {total:,}); "
          f"{len(claims):,} claims", file=sys.stderr)


def read_f32(path, rows):
    x = np.fromfile(path, dtype="<f4")
    if x.size != rows * DIM:
        raise SystemExit(f"{path}: {x.size} floats, expected {rows} x {DIM}")
    x = x.reshape(rows, DIM)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.all(np.isfinite(x)) or np.any(norms == 0):
        raise SystemExit(f"{path}: a vector is zero or not finite")
    return (x / norms).astype("<f4")


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def finish(args):
    sentences, claims = lines(os.path.join(args.work, "sentences.jsonl")), lines(os.path.join(args.work, "claims.jsonl"))
    sentence_ids, claim_ids = lines(os.path.join(args.work, "sentence_ids.jsonl")), lines(os.path.join(args.work, "claim_ids.jsonl"))
    base = read_f32(os.path.join(args.work, "sentences.f32"), len(sentences))
    queries = read_f32(os.path.join(args.work, "claims.f32"), len(claims))
    # Exact cosine ground truth in float64 (unit vectors: cosine = dot), top 100, ties by row.
    gt = np.empty((len(queries), 100), dtype=np.int64)
    b64 = base.astype(np.float64)
    for s in range(0, len(queries), 100):
        sims = queries[s:s + 100].astype(np.float64) @ b64.T
        top = np.argpartition(-sims, 100, axis=1)[:, :100]
        for i in range(top.shape[0]):
            cand = top[i]
            gt[s + i] = cand[np.lexsort((cand, -sims[i, cand]))]
    os.makedirs(args.out, exist_ok=True)
    write_fvecs(os.path.join(args.out, "scifact-sentences.fvecs"), base)
    write_fvecs(os.path.join(args.out, "scifact-sentences_query.fvecs"), queries)
    write_ivecs(os.path.join(args.out, "scifact-sentences_groundtruth.ivecs"), gt)
    with open(os.path.join(args.out, "scifact-sentences.meta.tsv"), "w", encoding="utf-8") as f:
        f.write("set\trow\tsource\ttext\n")
        for name, ids, texts in (("base", sentence_ids, sentences), ("query", claim_ids, claims)):
            for row, (i, t) in enumerate(zip(ids, texts)):
                f.write(f"{name}\t{row}\t{i}\t{t.replace(chr(9), ' ')}\n")
    print(f"wrote {len(base):,} base, {len(queries):,} queries, ground truth top-100 to {args.out}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["split", "finish"])
    ap.add_argument("--scifact", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--max-sentences", type=int, default=60000)
    args = ap.parse_args()
    if args.queries <= 0 or args.max_sentences <= 100:
        raise SystemExit("--queries must be positive and --max-sentences above 100 (the ground truth is top-100)")
    (split if args.step == "split" else finish)(args)


if __name__ == "__main__":
    main()
