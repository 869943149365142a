import QuiverCore
import QuiverStorage

/*
 The `vectors` table of one collection: each stored vector in `pieces` values, so that LMDB's 4 KiB
 pages are full at every dimension.

 LMDB keeps values of up to 2,038 bytes (with their key and an 8-byte node header) inside leaf pages,
 whole nodes only: a page holds 4,080 bytes of nodes, each node plus a 2-byte slot. A 384-d vector
 (1,536 bytes, 1,560 as a node) fits two to a page and leaves 956 bytes of it empty: a quarter of the
 table. Cut in two (two nodes of 796 bytes with their slots), it fits five halves, two and a half
 vectors, to a page: 94% of the page is vector bytes instead of 75%.

 Layout: with one piece (every collection created before this layout, and the dimensions where one
 piece packs best), the key is C ++ R (12 bytes) and the value the whole vector, as in format 2.
 With p > 1 pieces, piece i (0 ..< p) is keyed C ++ R ++ u8 i (13 bytes) and holds floats
 [i*d/p, (i+1)*d/p) (integer division: the pieces differ by one float at most), little-endian,
 followed by the checksum trailer of its own key and payload. A vector is stored when all of its
 pieces are; a row with some pieces and not others is damaged. The pieces of a row sort together
 and in order, so a cursor reads a vector as p consecutive entries.

 The count is chosen at creation from the dimension (`pieces(forDimension:)`) and recorded in the
 catalog entry (`CollectionInfo.vectorPieces`; absent: 1), so that a collection's layout never
 changes and older collections need no rewrite.
*/

/// The stored vectors of one collection, read and written whole whatever the number of pieces.
struct VectorTable {
    let table: LMDBTable
    let collection: UInt32
    /// The collection's name, for errors.
    let name: String
    let dimension: Int
    let pieces: Int

    /// The most pieces a collection may have.
    static let maxPieces = 16

    /// The pieces that pack LMDB's 4 KiB leaf pages best for vectors of `dimension` floats: the
    /// count with the fewest page bytes per vector, fewer pieces on a tie (1 for small dimensions).
    /// A single value too large for a leaf page goes to overflow pages of its own, whole pages.
    static func pieces(forDimension dimension: Int) -> Int {
        let page = 4_096, pageHeader = 16, nodeHeader = 8, nodeMax = 2_038
        func pageBytesPerVector(_ p: Int) -> Double? {
            guard p <= dimension else { return nil }
            let value = (dimension + p - 1) / p * 4 + 4
            let node = nodeHeader + (p == 1 ? 12 : 13) + value
            if node > nodeMax {
                return p == 1 ? Double((value + pageHeader + page - 1) / page * page) : nil
            }
            let perPage = (page - pageHeader) / ((node + 1) / 2 * 2 + 2)
            return Double(p * page) / Double(perPage)
        }
        var best = 1, bestBytes = pageBytesPerVector(1)!
        for p in 2...maxPieces {
            if let b = pageBytesPerVector(p), b < bestBytes { best = p; bestBytes = b }
        }
        return best
    }

    /// The floats of piece `i`.
    func range(ofPiece i: Int) -> Range<Int> { (i * dimension / pieces)..<((i + 1) * dimension / pieces) }

    /// The key of piece `i` of `row`.
    func key(_ row: UInt64, piece i: Int) -> [UInt8] {
        pieces == 1 ? Keys.row(collection, row) : Keys.row(collection, row) + [UInt8(i)]
    }

    /// The piece a key of this collection's `vectors` entries names, or nil for a key of another
    /// shape (a damaged or stray key).
    func piece(ofKey key: UnsafeRawBufferPointer) -> Int? {
        if pieces == 1 { return key.count == 12 ? 0 : nil }
        guard key.count == 13, Int(key[12]) < pieces else { return nil }
        return Int(key[12])
    }

    /// Stores `vector` (`dimension` floats) for `row`, a row id greater than every stored one of the
    /// collection: appended, LMDB's leaf pages stay full.
    func put(_ vector: [Float], row: UInt64, txn: LMDBTransaction) throws {
        guard vector.count == dimension else {
            throw StorageError(.invalidArgument, "collection '\(name)': a vector of \(vector.count) floats for row \(row), expected \(dimension)")
        }
        for i in 0..<pieces {
            let key = key(row, piece: i)
            var w = ByteWriter(capacity: range(ofPiece: i).count * 4 + 4)
            w.write(floats: Array(vector[range(ofPiece: i)]))
            try txn.putAppending(table, key, StoredValue.seal(w.bytes, key: key))
        }
    }

    /// Removes the vector of `row` (every piece of it).
    func delete(_ row: UInt64, txn: LMDBTransaction) throws {
        for i in 0..<pieces { try txn.delete(table, key(row, piece: i)) }
    }

    /// Copies the vector of `row` into `out` (`dimension` floats); false when none is stored. A
    /// damaged piece, or a vector with some of its pieces missing, throws.
    func read(_ row: UInt64, txn: LMDBTransaction, into out: UnsafeMutablePointer<Float>) throws -> Bool {
        for i in 0..<pieces {
            let key = key(row, piece: i)
            let found = try txn.withValue(table, key) { value -> Bool in
                guard let value else { return false }
                try decode(value, key: key, piece: i, into: out)
                return true
            }
            if !found {
                if i == 0 && pieces == 1 { return false }
                if i == 0 {
                    // No first piece: stored only if a later one is (which is damage).
                    for j in 1..<pieces where try txn.contains(table, self.key(row, piece: j)) { throw missing(row, piece: 0) }
                    return false
                }
                throw missing(row, piece: i)
            }
        }
        return true
    }

    /// The vector of `row`, or nil when none is stored.
    func read(_ row: UInt64, txn: LMDBTransaction) throws -> [Float]? {
        var out = [Float](repeating: 0, count: dimension)
        let found = try out.withUnsafeMutableBufferPointer { try read(row, txn: txn, into: $0.baseAddress!) }
        return found ? out : nil
    }

    /// Visits the stored vectors in row order, from row `from` on: `body` gets the row and its
    /// vector (valid only during the call) or the error that reading it raised (a damaged piece, a
    /// missing one), and returns false to stop.
    func forEach(txn: LMDBTransaction, from: UInt64 = 0,
                 _ body: (_ row: UInt64, _ vector: Result<UnsafeBufferPointer<Float>, Error>) throws -> Bool) throws {
        var scratch = [Float](repeating: 0, count: dimension)
        try scratch.withUnsafeMutableBufferPointer { buf in
            let out = buf.baseAddress!
            var current: UInt64?
            var next = 0
            var failure: Error?
            var going = true
            /// Hands the current row to `body` (with `failure`, if any).
            func finish(_ row: UInt64) throws {
                current = nil
                going = try body(row, failure.map { .failure($0) } ?? .success(UnsafeBufferPointer(buf)))
            }
            try txn.forEach(table, prefix: Keys.collection(collection), from: Keys.row(collection, from)) { k, v in
                guard k.count >= 12 else { return true }
                let row = Keys.rowID(of: k)
                if let c = current, c != row {
                    failure = failure ?? missing(c, piece: next)
                    try finish(c)
                    if !going { return false }
                }
                if current == nil { current = row; next = 0; failure = nil }
                guard let i = piece(ofKey: k), i == next else {
                    failure = failure ?? StoredValue.damaged(table: "vectors", key: k, collection: name,
                                                              detail: "its key is not piece \(next) of \(pieces)")
                    next += 1
                    if next >= pieces { try finish(row) }
                    return going
                }
                do { try decode(v, key: k, piece: i, into: out) } catch { failure = failure ?? error }
                next += 1
                if next == pieces { try finish(row) }
                return going
            }
            if going, let c = current {
                failure = failure ?? missing(c, piece: next)
                try finish(c)
            }
        }
    }

    /// What is wrong with the stored vector of `row` as a whole (its pieces present, of the right
    /// sizes; their checksums are verify's own walk), or nil when it is whole or absent.
    /// `present` is false when no piece of it is stored.
    func check(_ row: UInt64, txn: LMDBTransaction) throws -> (present: Bool, problem: String?) {
        var found: [Int] = []
        var wrongSize: [String] = []
        for i in 0..<pieces {
            try txn.withValue(table, key(row, piece: i)) { v in
                guard let v else { return }
                found.append(i)
                let expected = range(ofPiece: i).count * 4 + 4
                if v.count != expected {
                    wrongSize.append(pieces == 1 ? "a vector of \(v.count - 4) bytes, not \(dimension * 4)"
                                                 : "piece \(i) of its vector of \(v.count - 4) bytes, not \(expected - 4)")
                }
            }
        }
        if found.isEmpty { return (false, nil) }
        if found.count < pieces {
            let absent = (0..<pieces).filter { !found.contains($0) }.map(String.init).joined(separator: ", ")
            return (true, "piece \(absent) of its vector (\(pieces) pieces) missing")
        }
        return (true, wrongSize.isEmpty ? nil : wrongSize.joined(separator: "; "))
    }

    private func decode(_ value: UnsafeRawBufferPointer, key: [UInt8], piece i: Int, into out: UnsafeMutablePointer<Float>) throws {
        try key.withUnsafeBytes { try decode(value, key: $0, piece: i, into: out) }
    }

    private func decode(_ value: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, piece i: Int, into out: UnsafeMutablePointer<Float>) throws {
        let r = range(ofPiece: i)
        try VectorCodec.decode(value, key: key, collection: name, dimension: r.count, into: out + r.lowerBound)
    }

    private func missing(_ row: UInt64, piece i: Int) -> StorageError {
        StoredValue.damaged(table: "vectors", key: Keys.row(collection, row), collection: name,
                            detail: "piece \(i) of its \(pieces) is missing")
    }
}

extension VectorTable {
    init(_ info: CollectionInfo, tables: Tables) {
        self.init(table: tables.vectors, collection: info.number, name: info.name, dimension: info.dimension, pieces: info.pieces)
    }

    init(_ segs: CollectionSegments, tables: Tables) {
        self.init(table: tables.vectors, collection: segs.number, name: segs.name, dimension: segs.dimension, pieces: segs.vectorPieces)
    }
}

extension CollectionInfo {
    /// How many `vectors` values hold each of the collection's vectors (`VectorTable`).
    var pieces: Int { vectorPieces ?? 1 }
}

extension Collection {
    /// The collection's stored vectors.
    var vectorTable: VectorTable { VectorTable(info, tables: database.tables) }
}
