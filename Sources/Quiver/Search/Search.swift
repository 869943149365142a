import QuiverCore
import QuiverIndex
import QuiverStorage

/// Runs `body`, turning index errors into `QuiverError.invalidArgument`.
func wrapIndex<R>(_ body: () throws -> R) throws -> R {
    do { return try body() } catch let e as IndexError { throw QuiverError.invalidArgument("index: \(e.description)") }
}

/// How a search runs and what it returns with each hit.
public struct SearchOptions: Sendable {
    /// Include each hit's text.
    public var includeText = false
    /// Include each hit's vector.
    public var includeVector = false
    /// Scan every stored vector instead of using the index segments (slow; the exact answer).
    public var exact = false
    /// HNSW candidate list size for this search (default: the collection's `efSearch`; at least k).
    public var efSearch: Int?

    public init(includeText: Bool = false, includeVector: Bool = false, exact: Bool = false, efSearch: Int? = nil) {
        self.includeText = includeText
        self.includeVector = includeVector
        self.exact = exact
        self.efSearch = efSearch
    }
}

extension Collection {
    /// The `k` documents nearest to `text`, which the collection's encoder turns into a vector with
    /// its query tower. A collection without an encoder gives `QuiverError.encoder`.
    public func search(text: String, k: Int, options: SearchOptions = SearchOptions()) throws -> [SearchResult] {
        let encoder = try database.encoder(for: info)
        let vector = try encode([text], with: encoder, queries: true)
        return try search(vector: vector[row: 0], k: k, options: options)
    }

    /// The vector the collection's encoder makes of `text`: with the query tower when `query`,
    /// otherwise with the document tower.
    public func embed(_ text: String, query: Bool = true) throws -> [Float] {
        try encode([text], with: try database.encoder(for: info), queries: query)[row: 0]
    }

    /// The `k` documents nearest to `vector` under the collection's metric, best first. The search
    /// runs over the collection's segments (the exact mutable segment and the HNSW sealed ones);
    /// with `options.exact` it scans every stored vector in one snapshot instead.
    public func search(vector: [Float], k: Int, options: SearchOptions = SearchOptions()) throws -> [SearchResult] {
        guard k >= 1 && k <= Limits.maxK else { throw QuiverError.invalidArgument("k must be between 1 and \(Limits.maxK), not \(k)") }
        guard vector.count == info.dimension else {
            throw QuiverError.invalidArgument("the query vector has \(vector.count) components; '\(name)' has dimension \(info.dimension)")
        }
        if let bad = vector.firstIndex(where: { !$0.isFinite }) {
            throw QuiverError.invalidArgument("query vector component \(bad) is NaN or infinite")
        }
        let metric = info.metric
        let dimension = info.dimension
        if !options.exact {
            guard let segments = database.segments.segments(info.number) else { throw QuiverError.unknownCollection(name) }
            // A few more than k: a row deleted between the index search and the snapshot below is skipped.
            let hits = try wrapIndex { try segments.search(vector, k: k + 8, efSearch: options.efSearch) }
            return try database.readTransaction { txn in
                try checkExists(txn)
                var out: [SearchResult] = []
                for hit in hits where out.count < k {
                    if let r = try result(hit, txn: txn, options: options, skipMissing: true) { out.append(r) }
                }
                return out
            }
        }
        let query = metric.normalizes ? vector.normalized() : vector
        return try database.readTransaction { txn in
            try checkExists(txn)
            var top = TopK(k: k)
            var row = [Float](repeating: 0, count: dimension)
            try query.withUnsafeBufferPointer { q in
                try row.withUnsafeMutableBufferPointer { buf in
                    let r = buf.baseAddress!
                    try txn.forEach(database.tables.vectors, prefix: Keys.collection(info.number)) { key, value in
                        try VectorCodec.decode(value, dimension: dimension, into: r)
                        if metric.normalizes { DistanceKernels.normalize(r, dimension) }
                        top.push(id: Int64(Keys.rowID(of: key)), distance: metric.distance(q.baseAddress!, r, dimension: dimension))
                        return true
                    }
                }
            }
            return try top.sorted().compactMap { try result($0, txn: txn, options: options, skipMissing: false) }
        }
    }

    /// The search result of row `hit`; nil for a row no longer stored when `skipMissing`.
    private func result(_ hit: Neighbor, txn: LMDBTransaction, options: SearchOptions, skipMissing: Bool) throws -> SearchResult? {
        let rowKey = Keys.row(info.number, UInt64(hit.id))
        guard let idBytes = try txn.get(database.tables.rows, rowKey) else {
            if skipMissing { return nil }
            throw QuiverError.storage(StorageError(.corrupt, "row \(hit.id) of '\(name)' has a vector but no document"))
        }
        let id = String(decoding: idBytes, as: UTF8.self)
        guard let docBytes = try txn.get(database.tables.documents, Keys.document(info.number, id)) else {
            throw QuiverError.storage(StorageError(.corrupt, "row \(hit.id) of '\(name)' names document '\(id)', which is not stored"))
        }
        let record = try DocumentRecord(docBytes, withText: options.includeText)
        var vectorOut: [Float]?
        if options.includeVector {
            vectorOut = try txn.withValue(database.tables.vectors, rowKey) { try $0.map { try VectorCodec.decode($0, dimension: info.dimension) } }
        }
        return SearchResult(id: id, score: info.metric.score(fromDistance: hit.distance), metadata: record.metadata,
                            text: options.includeText ? record.text : nil, vector: vectorOut)
    }
}
