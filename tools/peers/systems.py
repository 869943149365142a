"""The peers of tools/bench-peers, one class each, behind one small interface.

Each system stores the workload's rows (id = row number, a 384-d float32 vector, and three metadata
fields: `category`, WordNet's lexicographer file as a keyword; `number`, a seeded random integer in
0..999; `flag`, a boolean) in a database directory, and answers k-nearest-neighbour queries by cosine
distance, optionally restricted to `number < limit` (the workload's 1% and 10% filters).

    modules                      Python modules to import before anything is timed
    create(db)                   make a new, empty database in directory db
    insert(ids, vectors, meta)   one batch of 1,000 rows (meta: categories, numbers, flags)
    finish()                     what makes the data searchable at full speed (index build,
                                 compaction, flush); ingest time includes it
    settings()                   [(label, setting)]: the recommended setting first, then settings in
                                 rising order of effort (the driver walks them to recall@10 0.95);
                                 an exact system has the recommended one alone
    use(setting)                 what a change of setting needs, before the queries are timed
    search(q, k, setting, limit) ids of the k nearest (limit: None, or keep number < limit)
    close(); open(db)            reopen an existing database
    notes                        what the system cannot do or how it was set up (for the table)

Settings are each system's documented defaults; where a system builds no index by default (LanceDB,
Milvus Lite, DuckDB), the recommended setting is the index its documentation recommends for vectors.
"""
import os
import numpy as np


class Peer:
    filters = True
    modules = []  # imported before anything is timed (an import is no part of opening a database)
    notes = ""

    def settings(self):
        return [("default (exact)", None)]

    def finish(self):
        pass

    def use(self, setting):
        """Called before a timed run of queries at `setting` (a change of setting is not timed)."""


class Chroma(Peer):
    """Chroma's PersistentClient: HNSW (hnswlib) with its defaults M 16, construction ef 100,
    search ef 100; metadata filters by `where`."""
    modules = ["chromadb"]
    notes = "HNSW defaults (M 16, ef_construction 100, ef_search 100)"

    def create(self, db):
        import chromadb
        self.path = db
        self.client = chromadb.PersistentClient(path=db)
        self.col = self.client.create_collection("wordnet", configuration={"hnsw": {"space": "cosine"}})
        self.ef = self.col.configuration["hnsw"]["ef_search"]

    def open(self, db):
        import chromadb
        self.path = db
        self.client = chromadb.PersistentClient(path=db)
        self.col = self.client.get_collection("wordnet")
        self.ef = self.col.configuration["hnsw"]["ef_search"]

    def insert(self, ids, vectors, meta):
        cats, nums, flags = meta
        self.col.add(ids=[str(i) for i in ids], embeddings=vectors,
                     metadatas=[{"category": c, "number": int(n), "flag": bool(f)} for c, n, f in zip(cats, nums, flags)])

    def settings(self):
        return [("ef_search 100 (default)", 100)] + [(f"ef_search {e}", e) for e in (16, 24, 32, 48, 64, 100, 128, 192, 256, 384)]

    def use(self, setting):
        if self.ef != setting:
            # A loaded index keeps the ef_search it was loaded with: store the new one, drop the
            # client's cached system and open the collection again.
            from chromadb.api.client import SharedSystemClient
            self.col.modify(configuration={"hnsw": {"ef_search": setting}})
            SharedSystemClient.clear_system_cache()
            self.open(self.path)

    def search(self, q, k, setting, limit):
        where = {"number": {"$lt": limit}} if limit is not None else None
        r = self.col.query(query_embeddings=[q], n_results=k, where=where, include=[])
        return [int(i) for i in r["ids"][0]]

    def close(self):
        self.col = None
        self.client = None


class LanceDB(Peer):
    """LanceDB (Lance files): an IVF_HNSW_SQ index (its documented choice for recall at speed; the
    default IVF_PQ needs refine_factor to reach 0.95), a BTREE scalar index on `number`, filters
    applied before the vector search (prefilter)."""
    modules = ["lancedb", "pyarrow"]
    notes = "IVF_HNSW_SQ index, BTREE on number, prefilter; batches appended then optimize()"

    def create(self, db):
        import lancedb
        import pyarrow as pa
        self.db = lancedb.connect(db)
        self.schema = pa.schema([pa.field("id", pa.int64()), pa.field("vector", pa.list_(pa.float32(), 384)),
                                 pa.field("category", pa.string()), pa.field("number", pa.int64()), pa.field("flag", pa.bool_())])
        self.table = None

    def open(self, db):
        import lancedb
        self.db = lancedb.connect(db)
        self.table = self.db.open_table("wordnet")

    def insert(self, ids, vectors, meta):
        import pyarrow as pa
        cats, nums, flags = meta
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        batch = pa.table([pa.array(np.asarray(ids, dtype=np.int64)), pa.FixedSizeListArray.from_arrays(flat, 384),
                          pa.array(list(cats)), pa.array(np.asarray(nums, dtype=np.int64)), pa.array(np.asarray(flags, dtype=bool))],
                         schema=self.schema)
        if self.table is None:
            self.table = self.db.create_table("wordnet", batch)
        else:
            self.table.add(batch)

    def finish(self):
        self.table.optimize()
        self.table.create_index(metric="cosine", vector_column_name="vector", index_type="IVF_HNSW_SQ")
        self.table.create_scalar_index("number", index_type="BTREE")
        self.table.wait_for_index(["vector_idx", "number_idx"]) if hasattr(self.table, "wait_for_index") else None

    def settings(self):
        base = [("nprobes default, ef default", (None, None))]
        return base + [(f"nprobes {n}, ef {e}", (n, e)) for n, e in ((1, 40), (2, 40), (4, 64), (8, 64), (8, 128), (16, 128), (16, 256), (32, 256))]

    def search(self, q, k, setting, limit):
        nprobes, ef = setting
        s = self.table.search(q, vector_column_name="vector").metric("cosine").limit(k).select(["id", "_distance"])
        if nprobes is not None:
            s = s.nprobes(nprobes)
        if ef is not None:
            s = s.ef(ef)
        if limit is not None:
            s = s.where(f"number < {limit}", prefilter=True)
        return s.to_arrow()["id"].to_pylist()

    def close(self):
        self.table = None
        self.db = None


class MilvusLite(Peer):
    """Milvus Lite (a local file through pymilvus, with a server process of its own): an HNSW index
    (M 16, efConstruction 200, as Quiver's), searched with Milvus's default ef (none given) and
    then rising ef. Milvus Lite also takes FLAT, IVF_FLAT and AUTOINDEX."""
    modules = ["pymilvus", "milvus_lite"]
    notes = "HNSW M 16, efConstruction 200 (Lite also takes FLAT, IVF_FLAT, AUTOINDEX); flush() before indexing; a server process (its CPU and RSS counted)"

    def create(self, db):
        from pymilvus import MilvusClient, DataType
        os.makedirs(db, exist_ok=True)
        self.client = MilvusClient(os.path.join(db, "milvus.db"))
        schema = self.client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=384)
        schema.add_field("category", DataType.VARCHAR, max_length=64)
        schema.add_field("number", DataType.INT64)
        schema.add_field("flag", DataType.BOOL)
        self.client.create_collection("wordnet", schema=schema)

    def open(self, db):
        from pymilvus import MilvusClient
        self.client = MilvusClient(os.path.join(db, "milvus.db"))
        self.client.load_collection("wordnet")

    def insert(self, ids, vectors, meta):
        cats, nums, flags = meta
        self.client.insert("wordnet", [{"id": int(i), "vector": v.tolist(), "category": c, "number": int(n), "flag": bool(f)}
                                       for i, v, c, n, f in zip(ids, vectors, cats, nums, flags)])

    def finish(self):
        self.client.flush("wordnet")
        # At full size Milvus Lite has already indexed the vector field by itself (an interim index of
        # its sealed segments): it refuses a second index on the field until that one is dropped.
        existing = self.client.list_indexes("wordnet")
        if existing:
            self.client.release_collection("wordnet")
            for name in existing:
                self.client.drop_index("wordnet", name)
        params = self.client.prepare_index_params()
        params.add_index(field_name="vector", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200})
        self.client.create_index("wordnet", params)
        self.client.load_collection("wordnet")

    def settings(self):
        return [("ef default", None)] + [(f"ef {e}", e) for e in (16, 24, 32, 48, 64, 96, 128, 192, 256)]

    def search(self, q, k, setting, limit):
        r = self.client.search("wordnet", data=[q.tolist()], limit=k, search_params={"metric_type": "COSINE", "params": {} if setting is None else {"ef": setting}},
                               filter=f"number < {limit}" if limit is not None else "")
        return [int(h["id"]) for h in r[0]]

    def close(self):
        self.client.close()
        self.client = None


class QdrantLocal(Peer):
    """Qdrant's local mode (qdrant-client path=...): the client stores points itself and searches
    them exactly with numpy; it warns that it is meant for small sets (no HNSW, no payload index)."""
    modules = ["qdrant_client"]
    notes = "local mode: exact numpy scan, no HNSW (warns above 20,000 points)"

    def _client(self, db):
        from qdrant_client import QdrantClient
        self.client = QdrantClient(path=db)

    def create(self, db):
        from qdrant_client import models
        self._client(db)
        self.client.create_collection("wordnet", vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE))

    def open(self, db):
        self._client(db)

    def insert(self, ids, vectors, meta):
        from qdrant_client import models
        cats, nums, flags = meta
        self.client.upsert("wordnet", points=models.Batch(ids=[int(i) for i in ids], vectors=vectors.tolist(),
                                                          payloads=[{"category": c, "number": int(n), "flag": bool(f)} for c, n, f in zip(cats, nums, flags)]))

    def search(self, q, k, setting, limit):
        from qdrant_client import models
        flt = models.Filter(must=[models.FieldCondition(key="number", range=models.Range(lt=limit))]) if limit is not None else None
        r = self.client.query_points("wordnet", query=q.tolist(), limit=k, query_filter=flt)
        return [int(p.id) for p in r.points]

    def close(self):
        self.client.close()
        self.client = None


class USearch(Peer):
    """usearch: an HNSW index alone (M 16, expansion_add 128, expansion_search 64 by default),
    saved to one file and memory-mapped back (`view`). It stores keys and vectors, no metadata:
    no filtered search."""
    filters = False
    modules = ["usearch.index"]
    notes = "index file alone, no metadata: no filters; reopened with view() (memory-mapped)"

    def create(self, db):
        from usearch.index import Index
        os.makedirs(db, exist_ok=True)
        self.path = os.path.join(db, "wordnet.usearch")
        self.index = Index(ndim=384, metric="cos", dtype="f32")

    def open(self, db):
        from usearch.index import Index
        self.path = os.path.join(db, "wordnet.usearch")
        self.index = Index.restore(self.path, view=True)

    def insert(self, ids, vectors, meta):
        self.index.add(np.asarray(ids, dtype=np.uint64), vectors, threads=1)

    def finish(self):
        self.index.save(self.path)

    def settings(self):
        return [("expansion_search 64 (default)", 64)] + [(f"expansion_search {e}", e) for e in (16, 24, 32, 48, 64, 96, 128, 192, 256)]

    def search(self, q, k, setting, limit):
        self.index.expansion_search = setting
        return [int(x) for x in self.index.search(q, k, threads=1).keys]

    def close(self):
        self.index = None


class SqliteVec(Peer):
    """sqlite-vec's vec0 virtual table (exact scan in chunks), with the metadata as vec0 metadata
    columns so that a KNN query filters on them; SQLite from pysqlite3-binary (the Python here
    cannot load extensions)."""
    modules = ["pysqlite3.dbapi2", "sqlite_vec"]
    notes = "vec0 table, exact scan; metadata columns filter inside the KNN query"

    def _connect(self, db):
        import pysqlite3.dbapi2 as sqlite3
        import sqlite_vec
        os.makedirs(db, exist_ok=True)
        self.con = sqlite3.connect(os.path.join(db, "wordnet.sqlite"))
        self.con.enable_load_extension(True)
        sqlite_vec.load(self.con)
        self.con.enable_load_extension(False)

    def create(self, db):
        self._connect(db)
        self.con.execute("create virtual table items using vec0(embedding float[384] distance_metric=cosine, "
                         "category text, number integer, flag boolean)")

    def open(self, db):
        self._connect(db)

    def insert(self, ids, vectors, meta):
        cats, nums, flags = meta
        with self.con:
            self.con.executemany("insert into items(rowid, embedding, category, number, flag) values (?, ?, ?, ?, ?)",
                                 [(int(i), v.astype(np.float32).tobytes(), c, int(n), bool(f)) for i, v, c, n, f in zip(ids, vectors, cats, nums, flags)])

    def search(self, q, k, setting, limit):
        sql = "select rowid from items where embedding match ? and k = ?"
        args = [q.astype(np.float32).tobytes(), k]
        if limit is not None:
            sql += " and number < ?"
            args.append(limit)
        return [r[0] for r in self.con.execute(sql + " order by distance", args)]

    def close(self):
        self.con.close()
        self.con = None


class DuckDBVSS(Peer):
    """DuckDB with its vss extension (from PyPI's duckdb-ext-vss): an HNSW index (usearch inside)
    in the database file, which needs `hnsw_enable_experimental_persistence`; ef_search set per
    connection. A filtered query (WHERE and ORDER BY distance LIMIT k) goes through the index too,
    which filters the index's k nearest afterwards: mostly fewer than k results."""
    modules = ["duckdb", "duckdb_ext", "pyarrow"]
    notes = "vss HNSW (experimental persistence; M 16, ef_construction 128, ef_search 64); a filter applies to the index's k nearest afterwards (post-filter), so filtered queries mostly return fewer than k"

    def _connect(self, db):
        import duckdb
        import duckdb_ext
        os.makedirs(db, exist_ok=True)
        self.con = duckdb.connect(os.path.join(db, "wordnet.duckdb"), config={"allow_unsigned_extensions": "true", "threads": 1})
        # duckdb_ext is a namespace package: the wheel's file sits under its path, per DuckDB version.
        ext = os.path.join(list(duckdb_ext.__path__)[0], "extensions", "v" + duckdb.__version__, "linux_amd64", "vss.duckdb_extension")
        self.con.execute(f"load '{ext}'")
        self.con.execute("set hnsw_enable_experimental_persistence = true")
        self.ef = None

    def create(self, db):
        self._connect(db)
        self.con.execute("create table items (id integer, embedding float[384], category varchar, number integer, flag boolean)")

    def open(self, db):
        self._connect(db)

    def insert(self, ids, vectors, meta):
        import pyarrow as pa
        cats, nums, flags = meta
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        batch = pa.table({"id": pa.array(np.asarray(ids, dtype=np.int32)), "embedding": pa.FixedSizeListArray.from_arrays(flat, 384),
                          "category": pa.array(list(cats)), "number": pa.array(np.asarray(nums, dtype=np.int32)),
                          "flag": pa.array(np.asarray(flags, dtype=bool))})
        self.con.register("batch", batch)
        self.con.execute("insert into items select * from batch")
        self.con.unregister("batch")

    def finish(self):
        self.con.execute("create index items_hnsw on items using hnsw (embedding) with (metric = 'cosine')")
        self.con.execute("checkpoint")

    def settings(self):
        return [("ef_search 64 (default)", 64)] + [(f"ef_search {e}", e) for e in (16, 24, 32, 48, 64, 96, 128, 192, 256)]

    def search(self, q, k, setting, limit):
        if self.ef != setting:
            self.con.execute(f"set hnsw_ef_search = {int(setting)}")
            self.ef = setting
        where = f"where number < {int(limit)} " if limit is not None else ""
        rows = self.con.execute(f"select id from items {where}order by array_cosine_distance(embedding, ?::float[384]) limit {int(k)}",
                                [q.tolist()]).fetchall()
        return [r[0] for r in rows]

    def close(self):
        self.con.close()
        self.con = None


SYSTEMS = {"chroma": Chroma, "lancedb": LanceDB, "milvus-lite": MilvusLite, "qdrant-local": QdrantLocal,
           "usearch": USearch, "sqlite-vec": SqliteVec, "duckdb-vss": DuckDBVSS}
