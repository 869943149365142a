import CQuiverKernels
import QuiverCore

/// An HNSW graph whose hot memory holds 8-bit codes instead of float32 vectors (FAISS's IndexHNSWSQ
/// with QT_8bit, usearch's i8): graph distances are computed on the codes (`SQ8Quantizer`, the
/// `qk_sq8` kernels of CQuiverKernels, dispatched at run time), and the `ef` candidates a search ends
/// with are re-scored with the full-precision vectors, so returned distances are exact.
///
/// ## Memory
/// Hot (what every search touches): per node one element of `4 + 4 * M0 + d` bytes (rounded up to 4:
/// link count, layer-0 links, codes), the id, level and upper-link offset, the upper links, the
/// tombstones and the 2d floats of the ranges. Cold: the float32 vectors (d * 4 bytes per node), read
/// only to re-score about `ef` candidates per search; in a segment file they are a section of their
/// own that stays on disk (the page cache holds what re-scoring touches). `memoryBytes` counts the cold
/// vectors only while they are in this index's own memory (built or copied, not yet written).
///
/// ## Building and growing
/// The graph is built on the float32 vectors (an `HNSWIndex`) and then quantized (`init(quantizing:)`);
/// `add` rebuilds that float index from the cold vectors and links (no re-linking of stored nodes),
/// inserts the new vectors, and quantizes again with ranges retrained over all live vectors: what a
/// merge or a rewrite does.
///
/// ## Thread-safety
/// As `HNSWIndex`: searches, `contains`, counts and `memoryBytes` run concurrently; `add`, `markDeleted`
/// and `efSearch`'s setter are exclusive.
public final class SQ8HNSWIndex: VectorIndex, HNSWSearchFront, @unchecked Sendable {
    public let dimension: Int
    public let metric: Metric
    public let parameters: HNSWParameters
    /// The list size of searches that pass no `ef`; set it only while no search runs.
    public var efSearch: Int
    /// How the ranges were (and are, at the next `add`) trained.
    public let training: SQ8Training

    let m: Int
    let m0: Int
    /// Byte offset of the codes in an element, and the element's size (a multiple of 4).
    let codeOffset: Int
    let elementSize: Int

    var storage: SQ8Storage
    let contexts = ContextPool { SQ8SearchContext() }

    /// Quantizes `source` (its graph, ids, tombstones and vectors are copied; `source` is unchanged),
    /// with ranges trained by `training` on its live vectors.
    public convenience init(quantizing source: HNSWIndex, training: SQ8Training = .standard) {
        let p = source.parameters, d = source.dimension
        let storage = SQ8Storage(quantizing: source, training: training, elementSize: Self.elementSize(m0: p.m0, dimension: d),
                                 codeOffset: Self.codeOffset(m0: p.m0))
        self.init(storage: storage, dimension: d, metric: source.metric, parameters: p, training: training)
        efSearch = source.efSearch
    }

    /// An index over decoded storage (`SQ8HNSWCodec`) or a copy's.
    init(storage: SQ8Storage, dimension: Int, metric: Metric, parameters: HNSWParameters, training: SQ8Training) {
        self.dimension = dimension
        self.metric = metric
        self.parameters = parameters
        efSearch = parameters.efSearch
        self.training = training
        m = parameters.m
        m0 = parameters.m0
        codeOffset = Self.codeOffset(m0: m0)
        elementSize = Self.elementSize(m0: m0, dimension: dimension)
        self.storage = storage
    }

    /// The codes follow the link count and the `m0` links.
    static func codeOffset(m0: Int) -> Int { 4 + 4 * m0 }
    static func elementSize(m0: Int, dimension: Int) -> Int { codeOffset(m0: m0) + (dimension + 3) / 4 * 4 }

    public var count: Int { storage.count }
    public var deletedCount: Int { storage.deletedCount }
    public var liveCount: Int { storage.count - storage.deletedCount }

    /// Hot bytes (elements, side arrays, upper links, tombstones, ranges, id map), plus the float32
    /// vectors while they are in this index's own memory (a mapped index reads them from its file).
    public var memoryBytes: Int { hotBytes + (storage.backing == nil ? coldBytes : 0) }

    /// The bytes every search reads: the figure a mapped segment keeps resident.
    public var hotBytes: Int {
        let s = storage
        return s.count * (elementSize + 8 + 1 + 4) + s.upperWords * 4 + (s.count + 63) / 64 * 8
            + 2 * dimension * 4 + (s.slotOf?.capacity ?? 0) * 12
    }

    /// The float32 vectors' bytes (re-scoring only).
    public var coldBytes: Int { storage.count * dimension * 4 }

    /// The current top layer of the graph.
    public var topLevel: Int { storage.maxLevel }

    /// The trained ranges.
    public var quantizer: SQ8Quantizer {
        SQ8Quantizer(scales: Array(UnsafeBufferPointer(start: storage.scales, count: dimension)),
                     offsets: Array(UnsafeBufferPointer(start: storage.offsets, count: dimension)))
    }

    // MARK: - Ids

    public func contains(_ id: Int64) -> Bool {
        guard let s = storage.slot(of: id) else { return false }
        return !storage.isTombstoned(s)
    }

    @discardableResult
    public func markDeleted(_ id: Int64) -> Bool {
        guard let s = storage.slot(of: id), !storage.isTombstoned(s) else { return false }
        storage.tombstones[Int(s >> 6)] |= 1 << UInt64(s & 63)
        storage.deletedCount += 1
        return true
    }

    public func forEachID(_ body: (_ id: Int64, _ deleted: Bool) throws -> Void) rethrows {
        for s in 0..<storage.count { try body(storage.labels[s], storage.isTombstoned(UInt32(s))) }
    }

    /// Calls `body` with the id, tombstone flag and full-precision vector (normalized for cosine) of
    /// every `step`-th slot: what a check against the vectors' source reads.
    public func forEachStoredVector(every step: Int = 1,
                                    _ body: (_ id: Int64, _ deleted: Bool, _ vector: UnsafeBufferPointer<Float>) throws -> Void) rethrows {
        var s = 0
        while s < storage.count {
            try body(storage.labels[s], storage.isTombstoned(UInt32(s)),
                     UnsafeBufferPointer(start: UnsafePointer(storage.vectors + s * dimension), count: dimension))
            s += max(1, step)
        }
    }

    /// The slots (every `step`-th) whose codes are not the quantization of their float32 vector under
    /// the stored ranges: what `verify` reports as damage a checksum cannot see (a file written wrong).
    public func checkCodes(every step: Int = 1) -> [(id: Int64, reason: String)] {
        let q = quantizer, g = graph
        var bad: [(id: Int64, reason: String)] = []
        var s = 0
        while s < count {
            let v = storage.vectors + s * dimension, c = g.code(UInt32(s))
            if let j = (0..<dimension).first(where: { q.code(v[$0], $0) != c[$0] }) {
                bad.append((storage.labels[s], "component \(j) has code \(c[j]); its value \(v[j]) quantizes to \(q.code(v[j], j))"))
            }
            s += max(1, step)
        }
        return bad
    }

    // MARK: - Copy and add

    public func copy() -> SQ8HNSWIndex {
        let c = SQ8HNSWIndex(storage: storage.copy(elementSize: elementSize, dimension: dimension),
                             dimension: dimension, metric: metric, parameters: parameters, training: training)
        c.efSearch = efSearch
        return c
    }

    /// The float32 HNSW index this one was quantized from (same graph, ids, tombstones, random state),
    /// rebuilt from the cold vectors and the links.
    public func floatIndex() -> HNSWIndex {
        storage.floatIndex(dimension: dimension, metric: metric, parameters: parameters, m0: m0,
                           elementSize: elementSize, efSearch: efSearch)
    }

    /// Inserts `vectors` through the float index (see the type's comment), links any node the
    /// insertions left unreachable (`HNSWIndex.linkUnreachableNodes`) and quantizes again with ranges
    /// retrained on every live vector. Throws as `HNSWIndex.add`, and then changes nothing.
    public func add(_ vectors: Matrix, ids: [Int64]) throws {
        guard vectors.rows > 0 || ids.count != 0 else { return }
        let f = floatIndex()
        f.reserveCapacity(count + vectors.rows)
        try f.add(vectors, ids: ids)
        f.linkUnreachableNodes()
        storage = SQ8Storage(quantizing: f, training: training, elementSize: elementSize, codeOffset: codeOffset)
    }

    /// Links nodes that no search from the entry point can reach (`HNSWIndex.linkUnreachableNodes`),
    /// through the float index; returns how many were linked.
    @discardableResult
    public func linkUnreachableNodes() -> Int {
        let f = floatIndex()
        let linked = f.linkUnreachableNodes()
        if linked > 0 { storage = SQ8Storage(quantizing: f, training: training, elementSize: elementSize, codeOffset: codeOffset) }
        return linked
    }
}

/// The arrays of an `SQ8HNSWIndex` (the layout of `HNSWGraph`, with codes in place of the vectors):
/// owned, or pointing into a mapped file (`backing`), except the tombstones, which are always owned.
struct SQ8Storage {
    var level0: UnsafeMutableRawPointer
    var labels: UnsafeMutablePointer<Int64>
    var levels: UnsafeMutablePointer<UInt8>
    var upperOffsets: UnsafeMutablePointer<UInt32>
    var upperPool: UnsafeMutablePointer<UInt32>
    var upperWords: Int
    var tombstones: UnsafeMutablePointer<UInt64>
    var scales: UnsafeMutablePointer<Float>
    var offsets: UnsafeMutablePointer<Float>
    /// The full-precision vectors, row-major (normalized for cosine).
    var vectors: UnsafeMutablePointer<Float>
    var count: Int
    var deletedCount: Int
    var entryPoint: UInt32
    var maxLevel: Int
    var rngState: UInt64
    var slotOf: [Int64: UInt32]?
    var idRange: ClosedRange<Int64>?
    /// Keeps the mapped bytes alive; nil when every array is owned.
    var backing: AnyObject?
    /// Frees the owned arrays when the last copy of this storage goes.
    var owner: SQ8Owner

    init(level0: UnsafeMutableRawPointer, labels: UnsafeMutablePointer<Int64>, levels: UnsafeMutablePointer<UInt8>,
         upperOffsets: UnsafeMutablePointer<UInt32>, upperPool: UnsafeMutablePointer<UInt32>, upperWords: Int,
         tombstones: UnsafeMutablePointer<UInt64>, scales: UnsafeMutablePointer<Float>, offsets: UnsafeMutablePointer<Float>,
         vectors: UnsafeMutablePointer<Float>, count: Int, deletedCount: Int, entryPoint: UInt32, maxLevel: Int,
         rngState: UInt64, slotOf: [Int64: UInt32]?, backing: AnyObject?) {
        self.level0 = level0; self.labels = labels; self.levels = levels; self.upperOffsets = upperOffsets
        self.upperPool = upperPool; self.upperWords = upperWords; self.tombstones = tombstones
        self.scales = scales; self.offsets = offsets; self.vectors = vectors
        self.count = count; self.deletedCount = deletedCount; self.entryPoint = entryPoint; self.maxLevel = maxLevel
        self.rngState = rngState; self.slotOf = slotOf; self.backing = backing
        var mapped: [UnsafeMutableRawPointer] = [UnsafeMutableRawPointer(tombstones)]
        let arrays = [level0, UnsafeMutableRawPointer(labels), UnsafeMutableRawPointer(levels), UnsafeMutableRawPointer(upperOffsets),
                      UnsafeMutableRawPointer(upperPool), UnsafeMutableRawPointer(scales), UnsafeMutableRawPointer(offsets),
                      UnsafeMutableRawPointer(vectors)]
        if backing == nil { mapped += arrays }
        owner = SQ8Owner(mapped)
        if count > 0 {
            var lo = Int64.max, hi = Int64.min
            for s in 0..<count { lo = min(lo, labels[s]); hi = max(hi, labels[s]) }
            idRange = lo...hi
        }
    }

    /// Allocates `n` elements of T (at least one), 64-byte aligned.
    static func allocate<T>(_ n: Int, of _: T.Type) -> UnsafeMutablePointer<T> {
        UnsafeMutableRawPointer.allocate(byteCount: max(1, n * MemoryLayout<T>.stride), alignment: 64).assumingMemoryBound(to: T.self)
    }

    static func duplicate<T>(_ p: UnsafePointer<T>, _ n: Int) -> UnsafeMutablePointer<T> {
        let out = allocate(n, of: T.self)
        UnsafeMutableRawPointer(out).copyMemory(from: p, byteCount: n * MemoryLayout<T>.stride)
        return out
    }

    /// The codes and copies of `source`'s arrays; ranges trained on its live vectors.
    init(quantizing source: HNSWIndex, training: SQ8Training, elementSize: Int, codeOffset: Int) {
        let n = source.count, d = source.dimension
        let vectors = Self.allocate(n * d, of: Float.self)
        for s in 0..<n {
            (vectors + s * d).update(from: source.graph.vector(UInt32(s)), count: d)
        }
        let q = SQ8Quantizer(training: training, vectors: vectors, rows: n, dimension: d) { !source.isTombstoned(UInt32($0)) }
        let level0 = UnsafeMutableRawPointer.allocate(byteCount: max(1, n * elementSize), alignment: 64)
        level0.initializeMemory(as: UInt8.self, repeating: 0, count: n * elementSize)
        for s in 0..<n {
            let e = level0 + s * elementSize
            e.copyMemory(from: source.level0 + s * source.elementSize, byteCount: codeOffset)
            q.encode(vectors + s * d, into: (e + codeOffset).assumingMemoryBound(to: UInt8.self))
        }
        let scales = Self.allocate(d, of: Float.self), offsets = Self.allocate(d, of: Float.self)
        scales.update(from: q.scales, count: d)
        offsets.update(from: q.offsets, count: d)
        self.init(level0: level0, labels: Self.duplicate(source.labels, n), levels: Self.duplicate(source.levels, n),
                  upperOffsets: Self.duplicate(source.upperOffsets, n), upperPool: Self.duplicate(source.upperPool, source.upperWords),
                  upperWords: source.upperWords, tombstones: Self.duplicate(source.tombstones, (n + 63) / 64),
                  scales: scales, offsets: offsets, vectors: vectors, count: n, deletedCount: source.deletedCount,
                  entryPoint: source.entryPoint, maxLevel: source.maxLevel, rngState: source.rng.state,
                  slotOf: source.slotOf, backing: nil)
    }

    /// A copy in memory of its own (one bulk copy per array).
    func copy(elementSize: Int, dimension d: Int) -> SQ8Storage {
        let n = count
        let l0 = UnsafeMutableRawPointer.allocate(byteCount: max(1, n * elementSize), alignment: 64)
        l0.copyMemory(from: level0, byteCount: n * elementSize)
        return SQ8Storage(level0: l0, labels: Self.duplicate(labels, n), levels: Self.duplicate(levels, n),
                          upperOffsets: Self.duplicate(upperOffsets, n), upperPool: Self.duplicate(upperPool, upperWords),
                          upperWords: upperWords, tombstones: Self.duplicate(tombstones, (n + 63) / 64),
                          scales: Self.duplicate(scales, d), offsets: Self.duplicate(offsets, d),
                          vectors: Self.duplicate(vectors, n * d), count: n, deletedCount: deletedCount,
                          entryPoint: entryPoint, maxLevel: maxLevel, rngState: rngState, slotOf: slotOf, backing: nil)
    }

    /// The float32 index with this graph: elements rebuilt from the links and the cold vectors.
    func floatIndex(dimension d: Int, metric: Metric, parameters: HNSWParameters, m0: Int, elementSize: Int, efSearch: Int) -> HNSWIndex {
        let n = count
        let linkBytes = 4 + 4 * m0
        let floatElement = linkBytes + 4 * d
        let l0 = UnsafeMutableRawPointer.allocate(byteCount: max(1, n * floatElement), alignment: 64)
        for s in 0..<n {
            let e = l0 + s * floatElement
            e.copyMemory(from: level0 + s * elementSize, byteCount: linkBytes)
            (e + linkBytes).copyMemory(from: vectors + s * d, byteCount: 4 * d)
        }
        let words = (n + 63) / 64
        let f = HNSWIndex(decodedDimension: d, metric: metric, parameters: parameters, count: n, level0: l0,
                          labels: Self.duplicate(labels, n), levels: Self.duplicate(levels, n),
                          upperOffsets: Self.duplicate(upperOffsets, n), upperPool: Self.duplicate(upperPool, upperWords),
                          upperWords: upperWords, tombstones: Self.duplicate(tombstones, words), tombstoneWords: words,
                          deletedCount: deletedCount, entryPoint: n == 0 ? HNSWIndex.noSlot : entryPoint, maxLevel: maxLevel,
                          rngState: rngState, slotOf: slotOf, backing: nil)
        f.efSearch = efSearch
        return f
    }

    func slot(of id: Int64) -> UInt32? {
        if let map = slotOf { return map[id] }
        return id >= 0 && id < Int64(count) ? UInt32(id) : nil
    }

    @inline(__always)
    func isTombstoned(_ s: UInt32) -> Bool { tombstones[Int(s >> 6)] & (1 << UInt64(s & 63)) != 0 }
}

/// Frees the owned arrays of an `SQ8Storage` once (storage values are copied freely).
final class SQ8Owner {
    let pointers: [UnsafeMutableRawPointer]
    init(_ pointers: [UnsafeMutableRawPointer]) { self.pointers = pointers }
    deinit { for p in pointers { p.deallocate() } }
}
