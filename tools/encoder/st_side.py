"""The sentence-transformers side of tools/bench-encoder, one JSON object per call on stdout.

  st_side.py throughput --model DIR --texts FILE --batch-size N [--threads N] [--repeat N]
  st_side.py embed --model DIR --texts FILE --out FILE.f32 [--kind documents|queries] [--batch-size N]

Texts files hold one JSON string per line (tools/encoder/prepare_texts.py). The model is loaded from
the same installed folder Quiver reads, on the CPU, with torch limited to --threads threads.
"""
import argparse
import json
import resource
import time

parser = argparse.ArgumentParser()
parser.add_argument("command", choices=["throughput", "embed"])
parser.add_argument("--model", required=True)
parser.add_argument("--texts", required=True)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--repeat", type=int, default=1)
parser.add_argument("--warmup", type=int, default=None)
parser.add_argument("--out")
parser.add_argument("--kind", default="documents")
args = parser.parse_args()

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(args.threads)
from sentence_transformers import SentenceTransformer  # noqa: E402

with open(args.texts, encoding="utf-8") as f:
    texts = [json.loads(line) for line in f if line.strip()]

t0 = time.perf_counter()
model = SentenceTransformer(args.model, device="cpu")
load_seconds = time.perf_counter() - t0


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def encode(batch):
    return model.encode(batch, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False)


if args.command == "throughput":
    tokens = sum(len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"])
    encode(texts[: args.warmup or args.batch_size])
    runs, cpu = [], []
    for _ in range(args.repeat):
        start, start_cpu = time.perf_counter(), cpu_seconds()
        with torch.inference_mode():
            encode(texts)
        runs.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - start_cpu)
    best = min(runs)
    best_cpu = cpu[runs.index(best)]
    print(json.dumps({
        "side": "sentence-transformers", "texts": len(texts), "tokens": tokens, "batch_size": args.batch_size,
        "threads": torch.get_num_threads(), "seconds": best, "all_seconds": runs,
        "texts_per_s": len(texts) / best, "tokens_per_s": tokens / best, "load_seconds": load_seconds,
        "cpu_seconds": best_cpu, "texts_per_cpu_second": len(texts) / best_cpu,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "torch": torch.__version__,
    }, sort_keys=True))
else:
    start = time.perf_counter()
    with torch.inference_mode():
        vectors = encode(texts).astype(np.float32)
    seconds = time.perf_counter() - start
    vectors.tofile(args.out)
    print(json.dumps({
        "side": "sentence-transformers", "texts": len(texts), "dimension": int(vectors.shape[1]),
        "seconds": seconds, "texts_per_s": len(texts) / seconds,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "out": args.out,
    }, sort_keys=True))
