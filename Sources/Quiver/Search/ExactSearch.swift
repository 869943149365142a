import QuiverCore
import QuiverStorage

/// What a search returns with each hit.
public struct SearchOptions: Sendable {
    /// Include each hit's text.
    public var includeText = false
    /// Include each hit's vector.
    public var includeVector = false

    public init(includeText: Bool = false, includeVector: Bool = false) {
        self.includeText = includeText
        self.includeVector = includeVector
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

    /// The `k` documents nearest to `vector` under the collection's metric, best first, by an exact
    /// scan of every stored vector in one snapshot. Ties are broken by insertion order.
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
            return try top.sorted().map { hit in
                let rowKey = Keys.row(info.number, UInt64(hit.id))
                guard let idBytes = try txn.get(database.tables.rows, rowKey),
                      let docBytes = try txn.get(database.tables.documents, Keys.document(info.number, String(decoding: idBytes, as: UTF8.self))) else {
                    throw QuiverError.storage(StorageError(.corrupt, "row \(hit.id) of '\(name)' has a vector but no document"))
                }
                let id = String(decoding: idBytes, as: UTF8.self)
                let record = try DocumentRecord(docBytes, withText: options.includeText)
                var vectorOut: [Float]?
                if options.includeVector {
                    vectorOut = try txn.withValue(database.tables.vectors, rowKey) { try $0.map { try VectorCodec.decode($0, dimension: dimension) } }
                }
                return SearchResult(id: id, score: metric.score(fromDistance: hit.distance), metadata: record.metadata,
                                    text: options.includeText ? record.text : nil, vector: vectorOut)
            }
        }
    }
}
