"""Puts IVFPQBench (Quiver) and tools/ivfpq/peers.py (FAISS) results side by side: prints a table
and the issue's ratios, writes summary.json and ivfpq-recall-qps.png in --out.

Ratios (one run, same machine, same data, same nlist / m / nbits / rerank depth):
- ADC recall@10 (no re-ranking) difference at each nprobe, and its mean over nprobe >= 8 (target: >= -0.01);
- QPS at recall@10 = 0.9 with re-ranking, linearly interpolated on each curve between the two nprobe
  points that bracket 0.9 (target: Quiver / FAISS >= 1); --clock picks the CPU (default) or wall QPS.
"""
import argparse
import json
import os


def at_recall(curve, target, recall_key, qps_key):
    pts = sorted(((c[recall_key], c[qps_key]) for c in curve), key=lambda p: p[0])
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 < target <= r1:
            return q0 + (q1 - q0) * (target - r0) / (r1 - r0) if r1 > r0 else q1
    if pts and pts[0][0] >= target:
        return pts[0][1]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--clock", default="cpu", choices=["cpu", "wall"])
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--target2", type=float, default=0.95, help="a second recall at which QPS is compared")
    ap.add_argument("--machine", help="machine.json of the run (CPU flags, load), copied into the summary")
    ap.add_argument("runs", nargs="+", help="pairs of quiver.json faiss.json per data set, named NAME.quiver.json / NAME.faiss.json")
    args = ap.parse_args()
    qk = "qps_rerank_cpu" if args.clock == "cpu" else "qps_rerank"
    ak = "qps_cpu" if args.clock == "cpu" else "qps"
    sets = {}
    for path in args.runs:
        name, system = os.path.basename(path).split(".")[:2]
        with open(path) as f:
            sets.setdefault(name, {})[system] = json.load(f)
    summary = {}
    for name, s in sets.items():
        q, f = s["quiver"], s["faiss"]
        fc = {c["nprobe"]: c for c in f["curve"]}
        print(f"\n== {name}: n {q['n']}, d {q['dimension']}, {q['metric']}, nlist {q['nlist']}, m {q['m']} x 8 bits, "
              f"rerank {q['rerank']} (FAISS IndexRefineFlat k_factor {f['rerank'] / f['k']:.0f}), {args.clock} clock")
        print(f"{'nprobe':>6} | {'ADC recall Q':>12} {'F':>6} {'diff':>6} | {'ADC QPS Q':>10} {'F':>8} | "
              f"{'rerank recall Q':>15} {'F':>6} | {'rerank QPS Q':>12} {'F':>8}")
        diffs = []
        for c in q["curve"]:
            o = fc.get(c["nprobe"])
            if not o:
                continue
            diff = c["recall"] - o["recall"]
            if c["nprobe"] >= 8:
                diffs.append(diff)
            print(f"{c['nprobe']:>6} | {c['recall']:>12.3f} {o['recall']:>6.3f} {diff:>+6.3f} | {c[ak]:>10.0f} {o[ak]:>8.0f} | "
                  f"{c['recall_rerank']:>15.3f} {o['recall_rerank']:>6.3f} | {c[qk]:>12.0f} {o[qk]:>8.0f}")
        qq, fq = at_recall(q["curve"], args.target, "recall_rerank", qk), at_recall(f["curve"], args.target, "recall_rerank", qk)
        entry = {
            "adc_recall_diff_mean_nprobe_ge_8": sum(diffs) / len(diffs) if diffs else None,
            "adc_recall_diff_max_nprobe": q["curve"][-1]["recall"] - fc[q["curve"][-1]["nprobe"]]["recall"] if q["curve"][-1]["nprobe"] in fc else None,
            f"qps_at_recall_{args.target}_quiver": qq, f"qps_at_recall_{args.target}_faiss": fq,
            "qps_ratio": qq / fq if qq and fq else None,
            # Both clocks, whichever --clock picked for the table.
            "qps_at_recall_by_clock": {
                clock: {"quiver": at_recall(q["curve"], args.target, "recall_rerank", key),
                        "faiss": at_recall(f["curve"], args.target, "recall_rerank", key)}
                for clock, key in (("cpu", "qps_rerank_cpu"), ("wall", "qps_rerank"))},
            f"qps_at_recall_{args.target2}_by_clock": {
                clock: {"quiver": at_recall(q["curve"], args.target2, "recall_rerank", key),
                        "faiss": at_recall(f["curve"], args.target2, "recall_rerank", key)}
                for clock, key in (("cpu", "qps_rerank_cpu"), ("wall", "qps_rerank"))},
            "kernels": {"quiver": q.get("float_kernel"), "faiss": f.get("simd")},
            "train_seconds": {"quiver": q["train_seconds"], "faiss": f["train_seconds"]},
            # CPU seconds of the whole process during training (every thread; FAISS's OpenMP threads
            # count while they spin waiting, as Quiver's workers would).
            "train_cpu_seconds": {"quiver": q.get("train_cpu_seconds"), "faiss": f.get("train_cpu_seconds")},
            # Re-ranking's cost per candidate: what it adds to a query at the smallest nprobe (CPU clock),
            # over the re-ranking depth (it includes keeping rerank candidates instead of k in the scan).
            "rerank_us_per_candidate": {
                system: (1 / run["curve"][0]["qps_rerank_cpu"] - 1 / run["curve"][0]["qps_cpu"]) * 1e6 / run["rerank"]
                for system, run in (("quiver", q), ("faiss", f))},
            "add_seconds": {"quiver": q["add_seconds"], "faiss": f["add_seconds"]},
            "list_bytes_per_vector": {"quiver": q["list_bytes_per_vector"], "faiss": f["list_bytes_per_vector"]},
            "quiver_index_bytes_per_vector": q["index_bytes_per_vector"],
        }
        if "seed_recall" in q and "seed_recall" in f:
            mean = lambda xs: sum(xs) / len(xs)
            entry["adc_recall_mean_over_seeds"] = {
                p: {"quiver": mean(q["seed_recall"][p]), "faiss": mean(f["seed_recall"][p]),
                    "diff": mean(q["seed_recall"][p]) - mean(f["seed_recall"][p]),
                    "quiver_range": [min(q["seed_recall"][p]), max(q["seed_recall"][p])],
                    "faiss_range": [min(f["seed_recall"][p]), max(f["seed_recall"][p])]}
                for p in q["seed_recall"] if p in f["seed_recall"]}
            diffs_s = [v["diff"] for p, v in entry["adc_recall_mean_over_seeds"].items() if int(p) >= 8]
            entry["adc_recall_diff_mean_over_seeds_nprobe_ge_8"] = mean(diffs_s) if diffs_s else None
        if "seed_loo_recall" in q and "seed_loo_recall" in f:
            mean = lambda xs: sum(xs) / len(xs)
            entry["adc_loo_recall_mean_over_seeds"] = {
                p: {"quiver": mean(q["seed_loo_recall"][p]), "faiss": mean(f["seed_loo_recall"][p]),
                    "diff": mean(q["seed_loo_recall"][p]) - mean(f["seed_loo_recall"][p])}
                for p in q["seed_loo_recall"] if p in f["seed_loo_recall"]}
            diffs_l = [v["diff"] for p, v in entry["adc_loo_recall_mean_over_seeds"].items() if int(p) >= 8]
            entry["adc_loo_recall_diff_mean_over_seeds_nprobe_ge_8"] = mean(diffs_l) if diffs_l else None
            entry["loo_queries"] = q["loo_queries"]
        for system, run, base_curve in (("quiver", q, {c["nprobe"]: c for c in q["curve"]}), ("faiss", f, fc)):
            if "opq" not in run:
                continue
            oc = {c["nprobe"]: c for c in run["opq"]["curve"]}
            entry[f"{system}_opq"] = {
                "iterations": run["opq"]["iterations"], "train_seconds": run["opq"]["train_seconds"],
                "adc_recall": {p: oc[p]["recall"] for p in oc},
                "adc_recall_gain": {p: oc[p]["recall"] - base_curve[p]["recall"] for p in oc if p in base_curve},
                "rerank_recall_gain": {p: oc[p]["recall_rerank"] - base_curve[p]["recall_rerank"] for p in oc if p in base_curve},
            }
        summary[name] = entry
        print(f"ADC recall diff (Quiver - FAISS), mean over nprobe >= 8: {entry['adc_recall_diff_mean_nprobe_ge_8']:+.4f}")
        for clock, v in entry["qps_at_recall_by_clock"].items():
            v["ratio"] = v["quiver"] / v["faiss"] if v["quiver"] and v["faiss"] else None
            if v["ratio"]:
                print(f"QPS at recall@10 = {args.target} with re-ranking ({clock} clock): Quiver {v['quiver']:.0f}, "
                      f"FAISS {v['faiss']:.0f}, ratio {v['ratio']:.2f}")
        for clock, v in entry[f"qps_at_recall_{args.target2}_by_clock"].items():
            v["ratio"] = v["quiver"] / v["faiss"] if v["quiver"] and v["faiss"] else None
            if v["ratio"]:
                print(f"QPS at recall@10 = {args.target2} with re-ranking ({clock} clock): Quiver {v['quiver']:.0f}, "
                      f"FAISS {v['faiss']:.0f}, ratio {v['ratio']:.2f}")
        if args.machine:
            with open(args.machine) as fh:
                entry["machine"] = json.load(fh)
        print(f"kernels: Quiver {entry['kernels']['quiver']}, FAISS {entry['kernels']['faiss']}")
        tc = entry["train_cpu_seconds"]
        if tc["quiver"] is not None and tc["faiss"] is not None:
            print(f"training CPU time (all threads): Quiver {tc['quiver']:.1f} s, FAISS {tc['faiss']:.1f} s, ratio {tc['quiver'] / tc['faiss']:.2f}")
        rc = entry["rerank_us_per_candidate"]
        print(f"re-ranking per candidate (nprobe {q['curve'][0]['nprobe']}, CPU clock): Quiver {rc['quiver']:.3f} us, FAISS {rc['faiss']:.3f} us")
        print(f"training: Quiver {q['train_seconds']:.1f} s, FAISS {f['train_seconds']:.1f} s; add: {q['add_seconds']:.2f} s vs {f['add_seconds']:.2f} s; "
              f"list bytes/vector {q['list_bytes_per_vector']} vs {f['list_bytes_per_vector']}")
        if "adc_recall_mean_over_seeds" in entry:
            n_seeds = len(next(iter(q["seed_recall"].values())))
            print(f"ADC recall over {n_seeds} training seeds (mean Quiver / FAISS / diff):")
            for p, v in sorted(entry["adc_recall_mean_over_seeds"].items(), key=lambda kv: int(kv[0])):
                print(f"  nprobe {p:>4}: {v['quiver']:.4f} / {v['faiss']:.4f} / {v['diff']:+.4f}")
            print(f"  mean diff over nprobe >= 8: {entry['adc_recall_diff_mean_over_seeds_nprobe_ge_8']:+.4f}")
        if "adc_loo_recall_mean_over_seeds" in entry:
            print(f"leave-one-out ADC recall on {entry['loo_queries']} base rows, same seeds (mean Quiver / FAISS / diff):")
            for p, v in sorted(entry["adc_loo_recall_mean_over_seeds"].items(), key=lambda kv: int(kv[0])):
                print(f"  nprobe {p:>4}: {v['quiver']:.4f} / {v['faiss']:.4f} / {v['diff']:+.4f}")
            print(f"  mean diff over nprobe >= 8: {entry['adc_loo_recall_diff_mean_over_seeds_nprobe_ge_8']:+.4f}")
        for system in ("quiver", "faiss"):
            o = entry.get(f"{system}_opq")
            if o:
                print(f"{system} OPQ ({o['iterations']} alternations, training {o['train_seconds']:.1f} s): ADC recall gain per nprobe",
                      {p: round(v, 3) for p, v in o["adc_recall_gain"].items()})
    with open(os.path.join(args.out, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=2, sort_keys=True)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(sets), figsize=(6.5 * len(sets), 4.8), squeeze=False)
    for ax, (name, s) in zip(axes[0], sets.items()):
        for system, color in (("quiver", "tab:blue"), ("faiss", "tab:orange")):
            c = s[system]["curve"]
            ax.plot([p["recall"] for p in c], [p[ak] for p in c], "o--", color=color, label=f"{system} IVF-PQ (ADC only)")
            ax.plot([p["recall_rerank"] for p in c], [p[qk] for p in c], "o-", color=color,
                    label=f"{system} + re-rank {s[system]['rerank']}")
        q = s["quiver"]
        ax.set_title(f"{name}: nlist {q['nlist']}, m {q['m']}, {q['metric']}")
        ax.set_xlabel("recall@10")
        ax.set_ylabel(f"queries/s, 1 thread ({args.clock})")
        ax.set_yscale("log")
        ax.axvline(args.target, color="grey", lw=0.5)
        ax.grid(True, which="both", lw=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "ivfpq-recall-qps.png"), dpi=120)
    print(f"\nwrote {args.out}/summary.json and {args.out}/ivfpq-recall-qps.png")


if __name__ == "__main__":
    main()
