"""Runs Quiver's encoder and sentence-transformers on the same texts, in the same run, and prints ratios.

Called by tools/bench-encoder (which sets up the virtualenv and builds EncoderBench). For each workload
the two sides alternate for --rounds rounds (so background load hits both alike) and the best time of
each side counts. Writes everything to <scratch>/results.json and prints a summary table.
"""
import argparse
import json
import os
import subprocess
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--bench", required=True, help="path of the EncoderBench executable")
parser.add_argument("--python", required=True, help="the virtualenv's python")
parser.add_argument("--model", required=True, help="installed model folder")
parser.add_argument("--models-dir", required=True)
parser.add_argument("--scratch", required=True)
parser.add_argument("--data", required=True, help="SciFact directory")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--rounds", type=int, default=2)
parser.add_argument("--skip-eval", action="store_true")
parser.add_argument("--workloads", default="claims,abstracts,fixtures")
args = parser.parse_args()

here = os.path.dirname(os.path.abspath(__file__))
S = args.scratch
WORKLOADS = {
    # name: (texts file, batch size, description)
    "claims": ("claims.jsonl", 64, "1,200 SciFact claims (300 test claims x 4), short texts"),
    "abstracts": ("abstracts.jsonl", 32, "600 SciFact abstracts, title + text, up to 256 tokens"),
    "fixtures": ("fixtures.jsonl", 64, "610 golden-fixture texts (61 x 10), mixed scripts and lengths"),
}


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if not lines:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"no JSON from {cmd}")
    return json.loads(lines[-1])


def quiver(*extra):
    return run([args.bench, *extra, "--models-dir", args.models_dir, "--threads", str(args.threads)])


def st(*extra):
    return run([args.python, os.path.join(here, "st_side.py"), *extra, "--model", args.model, "--threads", str(args.threads)])


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def sgemm_peak(threads):
    return run([args.bench, "sgemm-peak", "--threads", str(threads)])


results = {"threads": args.threads, "rounds": args.rounds, "workloads": {}, "loadavg_start": loadavg()}
# The peak is measured before and after the workloads and the best counts: background load only lowers it.
peaks = {t: [sgemm_peak(t)] for t in sorted({1, args.threads})}

for name in args.workloads.split(","):
    file, batch, description = WORKLOADS[name]
    path = os.path.join(S, file)
    q_runs, s_runs = [], []
    for r in range(args.rounds):
        s_runs.append(st("throughput", "--texts", path, "--batch-size", str(batch)))
        q_runs.append(quiver("throughput", "--texts", path, "--batch-size", str(batch)))
        print(f"  {name} round {r + 1}: quiver {q_runs[-1]['texts_per_s']:.1f}/s, "
              f"sentence-transformers {s_runs[-1]['texts_per_s']:.1f}/s", file=sys.stderr)
    q = min(q_runs, key=lambda x: x["seconds"])
    s = min(s_runs, key=lambda x: x["seconds"])
    results["workloads"][name] = {
        "description": description, "batch_size": batch, "texts": q["texts"], "tokens": q["tokens"],
        "quiver": q, "sentence_transformers": s, "quiver_runs": q_runs, "sentence_transformers_runs": s_runs,
        "ratio_texts_per_s": q["texts_per_s"] / s["texts_per_s"],
        "ratio_texts_per_cpu_second": q["texts_per_cpu_second"] / s["texts_per_cpu_second"],
        "quiver_gflops": q["gflops"], "sentence_transformers_gflops": q["gflops"] * q["seconds"] / s["seconds"],
        "loadavg": loadavg(),
    }

for t in peaks:
    peaks[t].append(sgemm_peak(t))
results["sgemm_peak"] = {t: max(runs, key=lambda r: r["gflops"]) for t, runs in peaks.items()}
results["sgemm_peak"][1]["gflops_per_cpu_second"] = max(r["gflops_per_cpu_second"] for r in peaks[1])
results["sgemm_peak_runs"] = peaks
peak = results["sgemm_peak"][args.threads]["gflops"]
peak1 = results["sgemm_peak"][1]["gflops"]
for w in results["workloads"].values():
    w["sgemm_peak_gflops"] = peak
    w["share_of_sgemm_peak"] = w["quiver_gflops"] / peak
    # Per CPU-second against the one-thread peak: the kernel efficiency, whatever else runs on the machine.
    w["share_of_sgemm_peak_per_cpu_second"] = (w["quiver"]["gflops_per_cpu_second"]
                                                / results["sgemm_peak"][1]["gflops_per_cpu_second"])

if not args.skip_eval:
    ev = {}
    qrels = os.path.join(args.data, "qrels_test.tsv")
    for side, fn in (("quiver", quiver), ("sentence_transformers", st)):
        corpus = os.path.join(S, f"{side}_corpus.f32")
        queries = os.path.join(S, f"{side}_queries.f32")
        c = fn("embed", "--texts", os.path.join(S, "corpus.jsonl"), "--out", corpus, "--batch-size", "32")
        qy = fn("embed", "--texts", os.path.join(S, "queries.jsonl"), "--out", queries, "--kind", "queries", "--batch-size", "64")
        score = run([args.python, os.path.join(here, "eval_scifact.py"), "--ids", os.path.join(S, "ids.json"),
                     "--qrels", qrels, "--corpus", corpus, "--queries", queries])
        ev[side] = {"ndcg_at_10": score["ndcg_at_10"], "corpus_embed": c, "queries_embed": qy}
        print(f"  eval {side}: nDCG@10 {score['ndcg_at_10']:.4f}, corpus {c['texts_per_s']:.1f} texts/s, "
              f"peak RSS {c['peak_rss_bytes'] / 2**20:.0f} MiB", file=sys.stderr)
    ev["ndcg_difference"] = ev["quiver"]["ndcg_at_10"] - ev["sentence_transformers"]["ndcg_at_10"]
    results["scifact_eval"] = ev

with open(os.path.join(S, "results.json"), "w") as f:
    json.dump(results, f, indent=2, sort_keys=True)

results["loadavg_end"] = loadavg()
print(f"threads {args.threads}; load average {results['loadavg_start']:.1f} at start, {results['loadavg_end']:.1f} at end")
print(f"sgemm peak (2048^3, best of start/end): {args.threads} threads {peak:.1f} GFLOP/s, 1 thread {peak1:.1f} GFLOP/s, "
      f"1 thread per CPU-second {results['sgemm_peak'][1]['gflops_per_cpu_second']:.1f} GFLOP/s")
print(f"{'workload':<10} {'batch':>5} {'quiver/s':>9} {'ST/s':>8} {'ratio':>6} {'cpu-s ratio':>11} {'Q tok/s':>8} "
      f"{'Q GFLOP/s':>9} {'% peak':>7} {'% peak/cpu-s':>12}")
for name, w in results["workloads"].items():
    print(f"{name:<10} {w['batch_size']:>5} {w['quiver']['texts_per_s']:>9.1f} {w['sentence_transformers']['texts_per_s']:>8.1f} "
          f"{w['ratio_texts_per_s']:>6.2f} {w['ratio_texts_per_cpu_second']:>11.2f} {w['quiver']['tokens_per_s']:>8.0f} "
          f"{w['quiver_gflops']:>9.1f} {100 * w['share_of_sgemm_peak']:>6.1f}% {100 * w['share_of_sgemm_peak_per_cpu_second']:>11.1f}%")
if "scifact_eval" in results:
    ev = results["scifact_eval"]
    print(f"SciFact nDCG@10: quiver {ev['quiver']['ndcg_at_10']:.4f}, sentence-transformers "
          f"{ev['sentence_transformers']['ndcg_at_10']:.4f}, difference {ev['ndcg_difference']:+.4f}")
    print(f"SciFact corpus (5,183 docs, batch 32): quiver {ev['quiver']['corpus_embed']['texts_per_s']:.1f} texts/s, "
          f"peak RSS {ev['quiver']['corpus_embed']['peak_rss_bytes'] / 2**20:.0f} MiB; sentence-transformers "
          f"{ev['sentence_transformers']['corpus_embed']['texts_per_s']:.1f} texts/s, "
          f"peak RSS {ev['sentence_transformers']['corpus_embed']['peak_rss_bytes'] / 2**20:.0f} MiB")
print(f"(full results: {os.path.join(S, 'results.json')})")
