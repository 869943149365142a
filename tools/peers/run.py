"""Driver of tools/bench-peers: prepares the workload, runs each system's build and reopen phases in
processes of their own (tools/peers/child.py; Benchmarks/PeerBench for Quiver), measures bytes on
disk between them, and writes results.json, table.md and plot.png into the output directory.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workload  # noqa: E402
from systems import SYSTEMS  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ["quiver"] + list(SYSTEMS)


def disk_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            if os.path.isfile(p) and not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def child(system, phase, args, db, out, setting=0):
    if system == "quiver":
        cmd = [args.peerbench, phase]
    else:
        cmd = [sys.executable, os.path.join(HERE, "child.py"), phase, system]
    cmd += ["--workload", args.workload, "--db", db, "--out", out, "--queries", str(args.queries), "--setting", str(setting)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", RAYON_NUM_THREADS="1")
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=args.timeout)
    sys.stderr.write(r.stderr[-3000:] if r.returncode else "".join(l + "\n" for l in r.stderr.splitlines() if l.startswith("  ")))
    if r.returncode != 0:
        lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
        raise RuntimeError(f"{phase} exited with {r.returncode}: {lines[-1] if lines else ''}")
    with open(out) as f:
        result = json.load(f)
    result[f"{phase}_process_s"] = time.perf_counter() - t
    return result


def run_system(system, args):
    saved = os.path.join(args.out, f"{system}.result.json")
    if args.resume and os.path.exists(saved):
        print(f"{system}: kept from an earlier run ({saved})", file=sys.stderr, flush=True)
        with open(saved) as f:
            return json.load(f)
    result = measure_system(system, args)
    with open(saved, "w") as f:
        json.dump(result, f, indent=1)
    return result


def measure_system(system, args):
    db = os.path.join(args.out, "db", system)
    shutil.rmtree(db, ignore_errors=True)
    os.makedirs(os.path.dirname(db), exist_ok=True)
    print(f"{system}: build", file=sys.stderr, flush=True)
    result = {"system": system}
    try:
        result.update(child(system, "build", args, db, os.path.join(args.out, f"{system}.build.json")))
        result["disk_bytes"] = disk_bytes(db)
        print(f"{system}: reopen", file=sys.stderr, flush=True)
        result["reopen"] = child(system, "reopen", args, db, os.path.join(args.out, f"{system}.reopen.json"), result["chosen"])
    except Exception as e:  # the table records the failure
        result["error"] = str(e)
        print(f"{system}: failed: {e}", file=sys.stderr, flush=True)
    if not args.keep:
        shutil.rmtree(db, ignore_errors=True)
    return result


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return [x for x in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile") if x in flags]
    return []


def mb(x):
    return f"{x / 1e6:,.0f}"


def table(results, meta):
    n = meta["rows"]
    raw = n * meta["dimension"] * 4
    lines = [f"WordNet, {n:,} x {meta['dimension']} vectors ({mb(raw)} MB raw float32) with 3 metadata fields, "
             f"{meta['queries']} queries, k 10, one query thread; QPS by the CPU time of each system's processes (Milvus Lite's server included). "
             f"CPU flags: {', '.join(meta['cpu_flags'])}; load average {meta['load_before']:.1f} before, {meta['load_after']:.1f} after "
             f"(a machine shared by eight agents: figures from a loaded machine).", ""]
    head = ["system", "ingest s (CPU s)", "recommended: recall / QPS", "at recall 0.95: setting", "recall", "QPS", "p50 ms", "p99 ms",
            "1% filter: recall / QPS", "10% filter: recall / QPS", "disk MB (x raw; bytes a vector)", "RSS MB open / after queries",
            "open + 1st query s"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    notes = []
    for r in results:
        name = r["system"]
        if "error" in r and "sweep" not in r:
            lines.append(f"| {name} | " + " | ".join(["failed"] + [""] * (len(head) - 2)) + " |")
            notes.append(f"**{name}**: {r['error']}")
            continue
        rec, at = r["sweep"][0], r["sweep"][r["chosen"]]
        reached = at["recall"] >= 0.95

        def filt(key):
            if not r.get("filters", True):
                return "no filter"
            f = r["filtered"].get(key)
            return f"{f['recall']:.3f} / {f['qps_cpu']:,.0f}" if f else "-"
        re = r.get("reopen", {})
        lines.append("| " + " | ".join([
            name, f"{r['ingest_s']:.1f} ({r['ingest_cpu_s']:.1f})", f"{rec['recall']:.3f} / {rec['qps_cpu']:,.0f}",
            at["label"] + ("" if reached else " (best; 0.95 not reached)"), f"{at['recall']:.3f}", f"{at['qps_cpu']:,.0f}",
            f"{at['p50_ms']:.2f}", f"{at['p99_ms']:.2f}", filt("f1"), filt("f10"),
            f"{mb(r['disk_bytes'])} ({r['disk_bytes'] / raw:.2f}x; {r['disk_bytes'] / n:,.0f})",
            f"{mb(re['rss_after_open'])} / {mb(re['rss_after_queries'])}" if re else "-",
            f"{re['open_first_query_s']:.2f}" if re else "-"]) + " |")
        note = SYSTEMS[name].notes if name in SYSTEMS else r.get("notes", "")
        if re:
            note += f"; process RSS before opening {mb(re['rss_before_open'])} MB (the workload's queries and vectors loaded, and for Python the interpreter and libraries)"
        if "error" in r:
            note += f"; reopen failed: {r['error']}"
        notes.append(f"**{name}**: {note}")
    lines += ["", "Notes:", ""] + [f"- {x}" for x in notes]
    return "\n".join(lines) + "\n"


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for r in results:
        if "sweep" not in r:
            continue
        pts = sorted((s["recall"], s["qps_cpu"]) for s in r["sweep"])
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=r["system"])
    ax.axvline(0.95, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries per CPU second (one thread)")
    ax.set_yscale("log")
    ax.set_title("WordNet 384-d: embedded vector databases, vectors given")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="Benchmarks/data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--subset", type=int, default=None)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--systems", default=",".join(ORDER))
    ap.add_argument("--peerbench", required=True)
    ap.add_argument("--timeout", type=int, default=7200)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--resume", action="store_true", help="reuse the results of systems already measured in --out")
    args = ap.parse_args()
    systems = [s for s in args.systems.split(",") if s]
    for s in systems:
        if s not in ORDER:
            ap.error(f"unknown system {s}; the systems are {', '.join(ORDER)}")
    os.makedirs(args.out, exist_ok=True)
    args.workload = os.path.join(args.out, "workload")
    print(f"workload: {args.subset or 'all'} rows into {args.workload}", file=sys.stderr, flush=True)
    workload.prepare(args.data, args.workload, args.subset)
    w = workload.Workload(args.workload)
    meta = {"rows": w.n, "dimension": w.base.shape[1], "queries": min(args.queries, len(w.queries)), "cpu_flags": cpu_flags(),
            "load_before": os.getloadavg()[0], "machine": platform.machine(), "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    del w
    results = [run_system(s, args) for s in systems]
    meta["load_after"] = os.getloadavg()[0]
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    text = table(results, meta)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(text)
    plot(results, os.path.join(args.out, "plot.png"))
    print(text)


if __name__ == "__main__":
    main()
