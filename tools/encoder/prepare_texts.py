"""Writes the benchmark's text sets, one JSON string per line, so both sides read the same texts.

claims.jsonl     SciFact's 300 test claims, 4 times (1,200 short texts, about 23 tokens)
abstracts.jsonl  the first 600 SciFact corpus documents as title + " " + text
fixtures.jsonl   the 61 golden-fixture texts, 10 times
corpus.jsonl     all 5,183 SciFact documents (title + " " + text), in corpus order
queries.jsonl    the 300 test claims, in file order
ids.json         corpus and query ids in the order of corpus.jsonl / queries.jsonl
"""
import json
import os
import sys

data_dir, fixtures_dir, out_dir = sys.argv[1:4]
os.makedirs(out_dir, exist_ok=True)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write(name, texts):
    with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")


corpus = read_jsonl(os.path.join(data_dir, "corpus.jsonl"))
queries = read_jsonl(os.path.join(data_dir, "queries.jsonl"))
documents = [(d.get("title") or "") + " " + (d.get("text") or "") for d in corpus]
claims = [q["text"] for q in queries]
fixtures = [r["text"] for r in read_jsonl(os.path.join(fixtures_dir, "minilm_reference.jsonl"))]

write("claims.jsonl", claims * 4)
write("abstracts.jsonl", documents[:600])
write("fixtures.jsonl", fixtures * 10)
write("corpus.jsonl", documents)
write("queries.jsonl", claims)
with open(os.path.join(out_dir, "ids.json"), "w") as f:
    json.dump({"corpus": [d["_id"] for d in corpus], "queries": [q["_id"] for q in queries]}, f)
