"""Creates a Milvus collection from a `quiver export --format milvus` directory, loads its rows,
builds its indexes, and checks what arrived (tools/milvus-load; docs/scale-out.md).

Steps:
  1. Optionally start the PyPI Milvus server (`--start-server DIR`: `milvus.default_server` with its
     data in DIR, advertised on 127.0.0.1, stopped on exit, on an error or on SIGTERM/SIGINT).
  2. Create the collection from schema.json (`CollectionSchema.construct_from_dict`).
  3. Load each row file: Milvus bulk insert (`utility.do_bulk_insert`, one file per task; a local-storage
     server such as the PyPI one reads it by absolute path), or batched inserts when bulk insert is
     refused (a server whose storage cannot see the file) or when `--mode batched` asks for them.
  4. Flush, build the vector and scalar indexes of schema.json, load the collection.
  5. Check: every row of the files arrived with equal id, vector, text and metadata; with `--check FILE`
     (JSON lines written by the Quiver side, format below) recall@10 of Milvus's searches against
     Quiver's exact top-10, and for each filter whether Milvus's matching ids equal Quiver's.

Check file lines:
  {"kind": "query", "vector": [...], "expected": ["id", ...]}                  exact top-k by Quiver
  {"kind": "filter", "filter": "<quiver text>", "expression": "<milvus>" | null,
   "refused": "<why>" | null, "expected": ["id", ...]}                           Quiver's matching ids
  optional in a filter line: "vector" and "expected_top": Quiver's exact filtered top-k

Prints one JSON report on stdout (and writes it to --report); progress goes to stderr.
Exit status: 0 when every check holds, 1 when one fails, 2 on a usage error, 3 when the server
cannot be started (the reason on stderr).
"""
import argparse
import json
import math
import os
import signal
import sys
import threading
import time

import numpy


def log(*parts):
    print("milvus-load:", *parts, file=sys.stderr, flush=True)


class Server:
    """The PyPI Milvus server, started in `base_dir` and stopped by `stop()` (idempotent)."""

    def __init__(self, base_dir):
        from milvus import default_server
        self.server = default_server
        self.server.set_base_dir(base_dir)
        # Advertise every component on loopback (the client connects to 127.0.0.1).
        for role in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord", "indexNode", "dataCoord", "dataNode"):
            self.server.config.set(f"{role}.ip", "127.0.0.1")
        self.started = False

    def start(self):
        t = time.time()
        # The server dies with this process even when it is killed outright (SIGKILL): the child asks
        # the kernel for SIGKILL when its parent exits (prctl PR_SET_PDEATHSIG).
        import ctypes
        import subprocess
        libc = ctypes.CDLL(None, use_errno=True)
        original = subprocess.Popen

        def popen(*a, **kw):
            kw["preexec_fn"] = lambda: libc.prctl(1, signal.SIGKILL, 0, 0, 0)
            return original(*a, **kw)
        subprocess.Popen = popen
        try:
            self.server.start()
        finally:
            subprocess.Popen = original
        self.started = True
        log(f"started the Milvus {self.version()} server in {time.time() - t:.1f} s on 127.0.0.1:{self.server.listen_port}")
        return self.server.listen_port

    def version(self):
        import milvus
        return milvus.__version__

    def stop(self):
        if self.started:
            self.started = False
            proc = self.server.server_proc
            self.server.stop()
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            log("stopped the Milvus server")


def fail_usage(message):
    log(message)
    sys.exit(2)


def read_rows(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)["rows"]


def quiver_document(row, fields):
    """A Milvus row (from a file or a query) as Quiver's {id, text, metadata, vector}."""
    metadata = dict(row.get("metadata") or {})
    for name in fields:
        if name in row:
            metadata[name] = row[name]
    # float32 values as the doubles that hold them exactly, so the JSON dump reads back bit for bit.
    doc = {"id": row["id"], "metadata": metadata, "vector": [float(x) for x in numpy.asarray(row["vector"], dtype=numpy.float32)]}
    if "text" in row:
        doc["text"] = row["text"]
    return doc


def same_value(a, b):
    """Equal metadata values, with ints and floats kept apart (2 is not 2.0 here)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, float) and isinstance(b, float) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def same_document(a, b):
    if a["id"] != b["id"] or a.get("text") != b.get("text"):
        return False
    # Both sides as float32, the type Quiver stores and Milvus's FLOAT_VECTOR holds.
    va, vb = numpy.asarray(a["vector"], dtype=numpy.float32), numpy.asarray(b["vector"], dtype=numpy.float32)
    if va.shape != vb.shape or not numpy.array_equal(va, vb):
        return False
    ma, mb = a["metadata"], b["metadata"]
    return ma.keys() == mb.keys() and all(same_value(ma[k], mb[k]) for k in ma)


def main():
    p = argparse.ArgumentParser(prog="tools/milvus-load", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("directory", help="the directory `quiver export --format milvus` wrote")
    p.add_argument("--uri", default=None, help="the server (default http://127.0.0.1:19530)")
    p.add_argument("--start-server", metavar="DIR", help="start the PyPI Milvus server with its data in DIR, and stop it at the end")
    p.add_argument("--collection", help="the Milvus collection name (default: schema.json's)")
    p.add_argument("--drop-existing", action="store_true", help="drop a collection of that name first (default: an error)")
    p.add_argument("--mode", choices=["auto", "bulk", "batched"], default="auto",
                   help="bulk insert, batched inserts, or bulk with batched as fallback (default)")
    p.add_argument("--batch-size", type=int, default=1000, help="rows per insert in batched mode (default 1000)")
    p.add_argument("--check", metavar="FILE", help="JSON lines of queries and filters with Quiver's answers")
    p.add_argument("--ef", type=int, help="HNSW ef of the check's searches (default: schema.json's, Quiver's efSearch)")
    p.add_argument("--dump", metavar="FILE", help="write every row Milvus holds as a Quiver JSONL document")
    p.add_argument("--compare-jsonl", metavar="FILE", help="also compare every row with Quiver's own JSONL export of the collection (`quiver export c f.jsonl`)")
    p.add_argument("--report", metavar="FILE", help="also write the JSON report here")
    p.add_argument("--min-recall", type=float, default=0.95, help="the recall@10 the check requires (default 0.95)")
    args = p.parse_args()

    schema_path = os.path.join(args.directory, "schema.json")
    if not os.path.isfile(schema_path):
        fail_usage(f"{schema_path} not found: give the directory `quiver export --format milvus` wrote")
    with open(schema_path, encoding="utf-8") as f:
        spec = json.load(f)
    if spec.get("format") != "quiver-milvus-export" or spec.get("version") != 1:
        fail_usage(f"{schema_path} is not a version 1 quiver-milvus-export schema")
    if args.batch_size < 1:
        fail_usage("--batch-size must be positive")

    server = None
    if args.start_server:
        try:
            server = Server(os.path.abspath(args.start_server))
        except ImportError as e:
            log(f"cannot start the Milvus server: {e}")
            sys.exit(3)

        def on_signal(signum, _frame):
            server.stop()
            os._exit(128 + signum)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            port = server.start()
        except Exception as e:  # the server binary failed to come up
            server.stop()
            log(f"cannot start the Milvus server: {e}")
            sys.exit(3)
        uri = args.uri or f"http://127.0.0.1:{port}"
    else:
        uri = args.uri or "http://127.0.0.1:19530"
    # The work runs in a thread so that the main thread, waiting in short joins, runs the signal
    # handler at once (a blocking gRPC call would hold it off until the call returns).
    outcome = {}

    def work():
        try:
            outcome["report"] = run(args, spec, uri, server)
        except BaseException as e:  # re-raised in the main thread
            outcome["error"] = e
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    finally:
        if server:
            server.stop()
    if "error" in outcome:
        raise outcome["error"]
    report = outcome["report"]
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    sys.exit(0 if report["ok"] else 1)


def run(args, spec, uri, server):
    from pymilvus import Collection, CollectionSchema, connections, utility

    connections.connect(uri=uri)
    name = args.collection or spec["collection_name"]
    report = {"collection": name, "server": utility.get_server_version(), "documents": spec["documents"], "ok": True}
    if utility.has_collection(name):
        if not args.drop_existing:
            raise SystemExit(f"milvus-load: the collection {name} exists (pass --drop-existing to replace it)")
        utility.drop_collection(name)
    schema = CollectionSchema.construct_from_dict(spec["schema"])
    coll = Collection(name, schema, consistency_level="Strong")
    fields = [f["name"] for f in spec["schema"]["fields"] if f["name"] not in ("id", "vector", "text", "metadata", "null_fields")]

    # Load.
    t0 = time.time()
    mode = args.mode
    loaded = 0
    for i, entry in enumerate(spec["files"]):
        path = os.path.abspath(os.path.join(args.directory, entry["path"]))
        if mode in ("auto", "bulk"):
            error = bulk_insert(utility, name, path)
            if error is None:
                loaded += entry["rows"]
                log(f"bulk insert {i + 1}/{len(spec['files'])}: {entry['path']}, {entry['rows']} rows ({loaded}/{spec['documents']})")
                continue
            if mode == "bulk":
                raise SystemExit(f"milvus-load: bulk insert of {path} failed: {error}")
            log(f"bulk insert refused ({error}); falling back to batched inserts")
            mode = "batched"
        rows = read_rows(path)
        for start in range(0, len(rows), args.batch_size):
            coll.insert(rows[start:start + args.batch_size])
            loaded += len(rows[start:start + args.batch_size])
            log(f"insert: {loaded}/{spec['documents']} rows")
    report["load_mode"] = "bulk insert" if mode != "batched" else "batched inserts"
    coll.flush()
    report["load_seconds"] = round(time.time() - t0, 2)

    t0 = time.time()
    for index in spec["indexes"]:
        params = {"index_type": index["index_type"], "params": index["params"]}
        if index.get("metric_type"):
            params["metric_type"] = index["metric_type"]
        coll.create_index(index["field"], params)
    coll.load()
    report["index_seconds"] = round(time.time() - t0, 2)
    count = coll.query(expr="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    report["rows_in_milvus"] = count
    if count != spec["documents"]:
        report["ok"] = False
    log(f"{count} rows loaded and indexed")

    # Every document arrived equal: what Milvus returns against what the files hold.
    t0 = time.time()
    expected = {}
    for entry in spec["files"]:
        for row in read_rows(os.path.join(args.directory, entry["path"])):
            expected[row["id"]] = quiver_document(row, fields)
    output = [f["name"] for f in spec["schema"]["fields"]]
    held = {}
    for row in all_rows(coll, spec, output):
        held[row["id"]] = quiver_document(row, fields)
    compare(expected, held, report, "documents")
    report["compare_seconds"] = round(time.time() - t0, 2)
    if args.compare_jsonl:
        # Quiver's documents as its JSONL export writes them (floats with a point, so kinds survive);
        # a document without text is '' in Milvus (schema.json's conversions say so).
        quiver = {}
        with open(args.compare_jsonl, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    d.setdefault("metadata", {})
                    if "text" in d or "text" in next(iter(held.values()), {}):
                        d["text"] = d.get("text") or ""
                    quiver[d["id"]] = d
        compare(quiver, held, report, "documents", "_quiver")
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as f:
            for i in sorted(held):
                f.write(json.dumps(held[i], ensure_ascii=False) + "\n")

    if args.check:
        check(args, spec, coll, report)
    return report


def compare(expected, held, report, prefix, suffix=""):
    """Reports how many of `expected` Milvus holds equal, and fails the run on any difference."""
    unequal = [i for i, d in expected.items() if i not in held or not same_document(d, held[i])]
    report[f"{prefix}_equal{suffix}"] = len(expected) - len(unequal)
    report[f"{prefix}_unequal{suffix}"] = len(unequal) + len(set(held) - set(expected))
    report[f"{prefix}_unequal{suffix}_examples"] = unequal[:5]
    if report[f"{prefix}_unequal{suffix}"]:
        report["ok"] = False


def bulk_insert(utility, name, path):
    """None once the server imported the file, else why it did not."""
    try:
        task = utility.do_bulk_insert(collection_name=name, files=[path])
    except Exception as e:  # the server refuses bulk insert altogether
        return str(e)
    while True:
        state = utility.get_bulk_insert_state(task)
        if state.state_name in ("Completed", "ImportCompleted"):
            return None
        if state.state_name.startswith("Failed"):
            return state.infos.get("failed_reason", state.state_name)
        time.sleep(0.5)


# The checks read with "Eventually": nothing is written after the load, and the Strong count that
# follows it saw every row, so no read can see less; "Strong" makes each request wait for the
# server's next time tick, seconds apiece on a loaded machine.
READ = "Eventually"

# Milvus 2.3 answers one query with at most this many rows (offset + limit).
QUERY_LIMIT = 16384


def all_rows(coll, spec, output):
    """Every row, through the query iterator (Milvus caps one query at 16,384 rows)."""
    it = coll.query_iterator(batch_size=1000, expr='id >= ""', output_fields=output, consistency_level=READ)
    while True:
        batch = it.next()
        if not batch:
            it.close()
            return
        yield from batch


def matching_ids(coll, expression, rows):
    if rows <= QUERY_LIMIT:  # one request holds them all
        return {r["id"] for r in coll.query(expr=expression, output_fields=["id"], limit=QUERY_LIMIT, consistency_level=READ)}
    ids = set()
    it = coll.query_iterator(batch_size=4000, expr=expression, output_fields=["id"], consistency_level=READ)
    while True:
        batch = it.next()
        if not batch:
            it.close()
            return ids
        ids.update(r["id"] for r in batch)


def check(args, spec, coll, report):
    search = spec["search"]
    params = {"metric_type": search["metric_type"], "params": dict(search["params"])}
    if args.ef and "ef" in params["params"]:
        params["params"]["ef"] = args.ef
    queries, filters = [], []
    with open(args.check, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                item = json.loads(line)
                (queries if item["kind"] == "query" else filters).append(item)

    def top(vector, k, expression=None):
        ef = params["params"].get("ef")
        p = params if ef is None or ef >= k else {**params, "params": {**params["params"], "ef": k}}
        hits = coll.search([vector], search["anns_field"], p, limit=k, expr=expression, output_fields=["id"], consistency_level=READ)[0]
        return [h.id for h in hits]

    t0 = time.time()
    recalls = []
    for n, q in enumerate(queries):
        if n % 100 == 0:
            log(f"queries: {n}/{len(queries)}")
        k = len(q["expected"])
        if k == 0:
            continue
        got = top(q["vector"], k)
        recalls.append(len(set(got) & set(q["expected"])) / k)
    report["queries"] = len(recalls)
    report["recall_at_10"] = round(sum(recalls) / len(recalls), 4) if recalls else None
    report["search_seconds"] = round(time.time() - t0, 2)
    if recalls and report["recall_at_10"] < args.min_recall:
        report["ok"] = False
    log(f"{len(recalls)} queries: recall@10 {report['recall_at_10']}")

    t0 = time.time()
    agreed, disagreed, refused, failed = 0, [], [], []
    filtered_recalls = []
    for n, item in enumerate(filters):
        if n % 100 == 0:
            log(f"filters: {n}/{len(filters)}")
        if item.get("expression") is None:
            refused.append({"filter": item["filter"], "reason": item.get("refused")})
            continue
        try:
            got = matching_ids(coll, item["expression"], report["rows_in_milvus"])
        except Exception as e:
            failed.append({"filter": item["filter"], "expression": item["expression"], "error": str(e)[:300]})
            continue
        want = set(item["expected"])
        if got == want:
            agreed += 1
        else:
            disagreed.append({"filter": item["filter"], "expression": item["expression"],
                              "only_milvus": sorted(got - want)[:5], "only_quiver": sorted(want - got)[:5],
                              "milvus": len(got), "quiver": len(want)})
        if item.get("vector") is not None and item.get("expected_top"):
            k = len(item["expected_top"])
            got_top = top(item["vector"], k, item["expression"])
            filtered_recalls.append(len(set(got_top) & set(item["expected_top"])) / k)
    report["filters"] = len(filters)
    report["filters_agreed"] = agreed
    report["filters_refused"] = len(refused)
    report["filters_disagreed"] = len(disagreed)
    report["filters_failed_in_milvus"] = len(failed)
    report["filters_refused_examples"] = refused[:5]
    report["filters_disagreed_examples"] = disagreed[:5]
    report["filters_failed_examples"] = failed[:5]
    report["filtered_searches"] = len(filtered_recalls)
    report["filtered_recall_at_10"] = round(sum(filtered_recalls) / len(filtered_recalls), 4) if filtered_recalls else None
    report["filter_seconds"] = round(time.time() - t0, 2)
    if disagreed or failed:
        report["ok"] = False
    log(f"{len(filters)} filters: {agreed} agree, {len(disagreed)} disagree, {len(refused)} refused by the translator, {len(failed)} failed in Milvus")


if __name__ == "__main__":
    main()
