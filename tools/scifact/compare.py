"""The table and the acceptance checks of tools/bench-scifact.

    compare.py QUIVER.json PEERS.json SUMMARY.json

QUIVER.json: SciFactBench's summary line ({"dense", "lexical", "hybrid"}); PEERS.json: peers.py's
object. Prints nDCG@10 side by side with the differences, then each check; writes both to
SUMMARY.json. Exit status 1 when a check fails.
"""
import json
import sys

quiver = json.load(open(sys.argv[1]))
peers = json.load(open(sys.argv[2]))
rows = [
    ("dense", quiver["dense"], peers["dense"], peers["dense_peer"]),
    ("BM25", quiver["lexical"], peers["bm25"], peers["bm25_peer"]),
    ("hybrid", quiver["hybrid"], peers["hybrid"], peers["hybrid_peer"]),
]
print(f"{'mode':8s} {'Quiver':>8s} {'peer':>8s} {'diff':>8s}  peer")
for mode, q, p, name in rows:
    print(f"{mode:8s} {q:8.4f} {p:8.4f} {q - p:+8.4f}  {name}")
checks = [
    ("dense within 0.005 of sentence-transformers", abs(quiver["dense"] - peers["dense"]) <= 0.005),
    ("BM25 within 0.01 of bm25s", abs(quiver["lexical"] - peers["bm25"]) <= 0.01),
    ("hybrid above dense and BM25, Quiver's and the peers'",
     quiver["hybrid"] > max(quiver["dense"], quiver["lexical"], peers["dense"], peers["bm25"])),
]
for label, ok in checks:
    print(f"{'PASS' if ok else 'FAIL'}  {label}")
json.dump({"quiver": quiver, "peers": peers, "checks": {label: ok for label, ok in checks}},
          open(sys.argv[3], "w"), indent=1, sort_keys=True)
sys.exit(0 if all(ok for _, ok in checks) else 1)
