"""What the Python sides of tools/bench-encoder share: their options, the texts file, and the two
commands (throughput and embed), each printing one JSON object on stdout.

A side module parses its options with `parser()` (adding its own), builds its encoder, and calls
`run(args, name, encode, count_tokens, extra)` with `encode(texts) -> float32 array (n, d)`.
"""
import argparse
import json
import resource
import time


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("command", choices=["throughput", "embed"])
    p.add_argument("--model", required=True, help="the installed model folder")
    p.add_argument("--texts", required=True, help="one JSON string per line")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--out")
    p.add_argument("--kind", default="documents")
    return p


def read_texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run(args, name, texts, encode, count_tokens, extra):
    """Runs the command of args over texts and prints its JSON object (with `extra` merged in)."""
    if args.command == "throughput":
        tokens = count_tokens(texts)
        encode(texts[: args.warmup or args.batch_size])
        runs, cpu = [], []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), cpu_seconds()
            encode(texts)
            runs.append(time.perf_counter() - start)
            cpu.append(cpu_seconds() - start_cpu)
        best = min(runs)
        best_cpu = cpu[runs.index(best)]
        out = {"texts": len(texts), "tokens": tokens, "batch_size": args.batch_size, "seconds": best,
               "all_seconds": runs, "texts_per_s": len(texts) / best, "tokens_per_s": tokens / best,
               "cpu_seconds": best_cpu, "texts_per_cpu_second": len(texts) / best_cpu}
    else:
        start = time.perf_counter()
        vectors = encode(texts).astype("float32")
        seconds = time.perf_counter() - start
        vectors.tofile(args.out)
        out = {"texts": len(texts), "dimension": int(vectors.shape[1]), "seconds": seconds,
               "texts_per_s": len(texts) / seconds, "out": args.out}
    out.update(extra)
    out.update({"side": name, "peak_rss_bytes": peak_rss()})
    print(json.dumps(out, sort_keys=True))
