"""Puts the runs of tools/bench-hnsw-sq8 side by side: per data set, each system's best CPU-time QPS
per efSearch over the rounds, QPS at recall@10 0.95 (interpolated between the two efSearch points
around it), recall at efSearch 64 (Quiver's default), memory per vector, and the ratios of the issue's
acceptance lines. Writes summary.json, summary.md and sq8-recall-qps.png to --out."""
import argparse
import json
import os

TARGET = 0.95


def qps_at(curve, target=TARGET):
    pts = sorted(curve, key=lambda p: p["ef"])
    for a, b in zip(pts, pts[1:]):
        if a["recall"] < target <= b["recall"]:
            t = (target - a["recall"]) / (b["recall"] - a["recall"])
            return a["qps_cpu"] + t * (b["qps_cpu"] - a["qps_cpu"])
    if pts and pts[0]["recall"] >= target:
        return pts[0]["qps_cpu"]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    sets = {}
    for path in args.runs:
        name = os.path.basename(path).split(".")[0]
        with open(path) as f:
            r = json.load(f)
        s = sets.setdefault(name, {"builds": {}, "curves": {}})
        if "curve" not in r:
            s["builds"][r["system"]] = r
            continue
        best = s["curves"].setdefault(r["system"], {})
        for p in r["curve"]:
            old = best.get(p["ef"])
            if old is None or p["qps_cpu"] > old["qps_cpu"]:
                best[p["ef"]] = p
        if "hot_bytes_per_vector" in r:
            s["hot_bytes_per_vector"] = r["hot_bytes_per_vector"]
    summary = {}
    lines = []
    for name, s in sets.items():
        curves = {k: sorted(v.values(), key=lambda p: p["ef"]) for k, v in s["curves"].items()}
        b = s["builds"]
        qb = b.get("quiver-sq8-build", {})
        mem = {
            "quiver": qb.get("float_bytes_per_vector"),
            "quiver-sq8": qb.get("sq8_hot_bytes_per_vector"),
            "faiss-sq8": b.get("faiss-sq8", {}).get("memory_bytes_per_vector_accounted"),
            "usearch-i8": b.get("usearch-i8", {}).get("memory_bytes_per_vector_accounted"),
        }
        rss = {k: b.get(k, {}).get("memory_bytes_per_vector_rss") for k in ("faiss-sq8", "usearch-i8")}
        at = {k: qps_at(c) for k, c in curves.items()}
        at99 = {k: qps_at(c, 0.99) for k, c in curves.items()}
        rec64 = {k: next((p["recall"] for p in c if p["ef"] == 64), None) for k, c in curves.items()}
        peers = [v for k, v in at.items() if k in ("faiss-sq8", "usearch-i8") and v]
        res = {
            "memory_bytes_per_vector": mem, "peer_rss_bytes_per_vector": rss, "qps_cpu_at_recall_0.95": at,
            "recall_at_ef64": rec64, "qps_cpu_at_recall_0.99": at99, "curves": curves, "training": qb.get("training"),
            "memory_ratio_sq8_vs_float": mem["quiver-sq8"] / mem["quiver"] if mem["quiver"] and mem["quiver-sq8"] else None,
            "qps_ratio_sq8_vs_float": at.get("quiver-sq8") / at["quiver"] if at.get("quiver-sq8") and at.get("quiver") else None,
            "qps_ratio_sq8_vs_faster_peer": at.get("quiver-sq8") / max(peers) if at.get("quiver-sq8") and peers else None,
            "qps_ratio_sq8_vs_float_at_0.99": at99.get("quiver-sq8") / at99["quiver"] if at99.get("quiver-sq8") and at99.get("quiver") else None,
        }
        summary[name] = res
        lines.append(f"### {name}\n")
        lines.append("| system | bytes/vector (accounted) | build RSS bytes/vector | QPS (CPU) at recall@10 0.95 | at 0.99 | recall@10 at ef 64 |")
        lines.append("|---|---|---|---|---|---|")
        for k in ("quiver", "quiver-sq8", "faiss-sq8", "usearch-i8"):
            m = mem.get(k)
            q = at.get(k)
            r = rec64.get(k)
            lines.append(f"| {k} | {m:.0f} |" if m else f"| {k} | - |")
            lines[-1] += f" {rss[k]:.0f} |" if rss.get(k) else " - |"
            q99 = at99.get(k)
            lines[-1] += (f" {q:.0f} |" if q else " not reached |") + (f" {q99:.0f} |" if q99 else " not reached |")
            lines[-1] += f" {r:.4f} |" if r is not None else " - |"
        lines.append("")
        for key in ("memory_ratio_sq8_vs_float", "qps_ratio_sq8_vs_float", "qps_ratio_sq8_vs_faster_peer", "qps_ratio_sq8_vs_float_at_0.99"):
            v = res[key]
            lines.append(f"- {key}: {v:.3f}" if v else f"- {key}: n/a")
        lines.append("")
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, len(summary), figsize=(6 * len(summary), 4.5), squeeze=False)
        for ax, (name, res) in zip(axes[0], summary.items()):
            for k, c in res["curves"].items():
                ax.plot([p["recall"] for p in c], [p["qps_cpu"] for p in c], marker="o", label=k)
            ax.axvline(TARGET, color="grey", linestyle=":")
            ax.set_title(f"{name}: recall@10 vs QPS (1 thread, CPU time)")
            ax.set_xlabel("recall@10")
            ax.set_ylabel("queries / CPU second")
            ax.set_yscale("log")
            ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "sq8-recall-qps.png"), dpi=110)
    except ImportError:
        pass


if __name__ == "__main__":
    main()
