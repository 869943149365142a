"""The WordNet glosses as a BM25 data set, in SciFact's layout, for tools/bench-bm25 --set wordnet.

    python tools/bm25/build_wordnet_glosses.py --out DIR [--wordnet /usr/share/wordnet]

Reads the 117,659 glosses of Debian's wordnet-base as tools/hnsw/build_wordnet_data.py does and splits
them the same way (the same 1,000 held-out glosses, by the same seed), so that the lexical benchmark
and the vector benchmarks search the same texts: base row i is WordNet's base vector i.
Writes DIR/corpus.jsonl ({"_id": "b<row>", "title": "", "text": gloss}, one per base row, in row
order) and DIR/queries.jsonl ({"_id": "q<row>", "text": gloss}, the held-out glosses). There are no
relevance judgments (no qrels_test.tsv): the benchmark reports speed and agreement between systems.
"""
import argparse
import json
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "hnsw"))
from build_wordnet_data import held_out_split, read_synsets  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wordnet", default="/usr/share/wordnet")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rows = read_synsets(args.wordnet)
    base_idx, query_idx = held_out_split(len(rows))
    os.makedirs(args.out, exist_ok=True)
    for name, prefix, idx, extra in (("corpus.jsonl", "b", base_idx, {"title": ""}), ("queries.jsonl", "q", query_idx, {})):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            for row, i in enumerate(idx):
                f.write(json.dumps({"_id": f"{prefix}{row}", **extra, "text": rows[i][3]}, ensure_ascii=False) + "\n")
    print(f"wordnet glosses: {len(base_idx)} documents, {len(query_idx)} queries in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
