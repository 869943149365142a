"""The workload of tools/bench-peers: WordNet gloss vectors with three metadata fields, the exact
answers, and the few measures every side shares.

A workload directory holds
    base.fvecs, queries.fvecs     the first N WordNet base vectors (384-d) and the queries
    meta.tsv                      row, category, number, flag: category is the row's lexicographer
                                  file by name (noun.animal, ...), number a random integer in 0..999
                                  (numpy's default_rng(15)), flag a random boolean
    gt.ivecs, gt_f1.ivecs,        the exact 10 nearest by cosine: unfiltered, among number < 10 (1%)
    gt_f10.ivecs                  and among number < 100 (10%)
Benchmarks/PeerBench reads the same files.
"""
import os

import numpy as np

# WordNet's lexicographer files, by number (lexnames(5WN)).
LEXNAMES = ["adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
            "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
            "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession",
            "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
            "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption",
            "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession",
            "verb.social", "verb.stative", "verb.weather", "adj.ppl"]
FILTERS = {"f1": 10, "f10": 100}  # number < limit
K = 10


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].view(dtype).copy()


def write_vecs(path, m):
    m = np.ascontiguousarray(m)
    d = m.shape[1]
    out = np.empty((m.shape[0], d + 1), dtype=np.int32)
    out[:, 0] = d
    out[:, 1:] = m.view(np.int32)
    out.tofile(path)


def exact_top_k(base, queries, allowed=None, k=K):
    """Row numbers of the k nearest by cosine (the rows are normalized first), among `allowed`."""
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    rows = np.arange(len(b)) if allowed is None else np.flatnonzero(allowed)
    out = np.empty((len(q), k), dtype=np.int32)
    for s in range(0, len(q), 256):
        sims = q[s:s + 256] @ b[rows].T
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
        out[s:s + 256] = rows[np.take_along_axis(top, order, axis=1)]
    return out


def prepare(data, directory, subset=None):
    """Writes the workload of the first `subset` WordNet rows (all when None) into `directory`."""
    os.makedirs(directory, exist_ok=True)
    base = read_vecs(os.path.join(data, "wordnet.fvecs"), np.float32)
    if subset:
        base = base[:subset]
    queries = read_vecs(os.path.join(data, "wordnet_query.fvecs"), np.float32)
    lex = np.zeros(len(base), dtype=np.int64)
    with open(os.path.join(data, "wordnet.meta.tsv")) as f:
        next(f)
        for line in f:
            kind, row, _, _, filenum = line.rstrip("\n").split("\t")
            if kind == "base" and int(row) < len(base):
                lex[int(row)] = int(filenum)
    rng = np.random.default_rng(15)
    numbers = rng.integers(0, 1000, len(base))
    flags = rng.random(len(base)) < 0.5
    write_vecs(os.path.join(directory, "base.fvecs"), base)
    write_vecs(os.path.join(directory, "queries.fvecs"), queries)
    with open(os.path.join(directory, "meta.tsv"), "w") as f:
        for r in range(len(base)):
            f.write(f"{r}\t{LEXNAMES[lex[r]]}\t{numbers[r]}\t{int(flags[r])}\n")
    write_vecs(os.path.join(directory, "gt.ivecs"), exact_top_k(base, queries))
    for name, limit in FILTERS.items():
        write_vecs(os.path.join(directory, f"gt_{name}.ivecs"), exact_top_k(base, queries, numbers < limit))


class Workload:
    def __init__(self, directory):
        self.base = read_vecs(os.path.join(directory, "base.fvecs"), np.float32)
        self.queries = read_vecs(os.path.join(directory, "queries.fvecs"), np.float32)
        self.n = len(self.base)
        cats, nums, flags = [], [], []
        with open(os.path.join(directory, "meta.tsv")) as f:
            for line in f:
                _, c, n, fl = line.rstrip("\n").split("\t")
                cats.append(c)
                nums.append(int(n))
                flags.append(fl == "1")
        self.categories, self.numbers, self.flags = cats, np.array(nums), np.array(flags)
        self.filters = dict(FILTERS)
        self.truth = {None: read_vecs(os.path.join(directory, "gt.ivecs"), np.int32)}
        for name in FILTERS:
            self.truth[name] = read_vecs(os.path.join(directory, f"gt_{name}.ivecs"), np.int32)

    def meta_slice(self, start, end):
        return self.categories[start:end], self.numbers[start:end], self.flags[start:end]


def recall_at_k(found, truth, k=K):
    """The share of the true k nearest that were found, over every query."""
    hits = sum(len(set(f[:k]) & set(t[:k].tolist())) for f, t in zip(found, truth))
    return hits / (k * len(truth))


def cpu_seconds():
    """CPU seconds (user + system) of this process and of the processes it started that are still
    running: Milvus Lite answers from a server process of its own, whose work counts too."""
    import psutil
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def rss_bytes():
    """Resident bytes of this process and of the processes it started (Milvus Lite's server)."""
    import psutil
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total

