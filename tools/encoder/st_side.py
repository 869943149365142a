"""The sentence-transformers side of tools/bench-encoder, one JSON object per call on stdout.

  st_side.py throughput --model DIR --texts FILE --batch-size N [--threads N] [--repeat N]
  st_side.py embed --model DIR --texts FILE --out FILE.f32 [--kind documents|queries] [--batch-size N]

Texts files hold one JSON string per line (tools/encoder/prepare_texts.py). The model is loaded from
the same installed folder Quiver reads, on the CPU, with torch limited to --threads threads.
"""
import time

import side

args = side.parser("sentence-transformers side").parse_args()

import torch  # noqa: E402

torch.set_num_threads(args.threads)
from sentence_transformers import SentenceTransformer  # noqa: E402

texts = side.read_texts(args.texts)
t0 = time.perf_counter()
model = SentenceTransformer(args.model, device="cpu")
load_seconds = time.perf_counter() - t0


def encode(batch):
    with torch.inference_mode():
        return model.encode(batch, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False)


def count_tokens(batch):
    return sum(len(ids) for ids in model.tokenizer(batch, truncation=True, max_length=model.max_seq_length)["input_ids"])


side.run(args, "sentence-transformers", texts, encode, count_tokens,
         {"threads": torch.get_num_threads(), "load_seconds": load_seconds, "torch": torch.__version__})
