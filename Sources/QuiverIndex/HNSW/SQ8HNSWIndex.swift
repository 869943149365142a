import CQuiverKernels
import QuiverCore

/// An HNSW graph whose hot memory holds 8-bit codes instead of float32 vectors (FAISS's IndexHNSWSQ
/// with QT_8bit, usearch's i8): graph distances are computed on the codes (`SQ8Quantizer`, the
/// `qk_sq8` kernels of CQuiverKernels, dispatched at run time), and the `ef` candidates a search ends
/// with are re-scored with the full-precision vectors, so returned distances are exact.
///
/// ## Memory
/// Hot (what every search touches): per node one element of `w * (1 + M0) + d` bytes (rounded up to 4:
/// link count, layer-0 links, codes), the id, level and upper-link offset, the upper links, the
/// tombstones and the 2d floats of the ranges. Links (and link counts) are `w` = 2 bytes wide while
/// every slot fits in 16 bits (fewer than 65,536 nodes), else 4 (`linkWidth`): on 128-d data the
/// 32-bit layer-0 links would cost more than the codes. The width is chosen from the count each time
/// the storage is built (quantizing, `add`), so a graph that grows past 65,535 nodes widens. Cold: the float32 vectors (d * 4 bytes per node), read
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

    var storage: SQ8Storage
    /// Byte offset of the codes in an element, and the element's size (a multiple of 4).
    var codeOffset: Int { storage.codeOffset }
    var elementSize: Int { storage.elementSize }
    /// The bytes of a link (and of a link count): 2 or 4.
    public var linkWidth: Int { storage.linkWidth }
    let contexts = ContextPool { SQ8SearchContext() }

    /// Quantizes `source` (its graph, ids, tombstones and vectors are copied; `source` is unchanged),
    /// with ranges trained by `training` on its live vectors.
    public convenience init(quantizing source: HNSWIndex, training: SQ8Training = .standard) {
        self.init(quantizing: source, training: training, linkWidth: Self.linkWidth(count: source.count))
    }

    /// As `init(quantizing:training:)` with links `linkWidth` bytes wide (2 needs fewer than 65,536
    /// nodes): what tests use to reach the 32-bit layout without 65,536 vectors.
    convenience init(quantizing source: HNSWIndex, training: SQ8Training, linkWidth: Int) {
        let storage = SQ8Storage(quantizing: source, training: training, linkWidth: linkWidth)
        self.init(storage: storage, dimension: source.dimension, metric: source.metric, parameters: source.parameters, training: training)
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
        self.storage = storage
    }

    /// The link width of a graph of `count` nodes: 2 bytes while every slot fits (count < 65,536), else 4.
    public static func linkWidth(count: Int) -> Int { count < 1 << 16 ? 2 : 4 }
    /// The codes follow the link count and the `m0` links.
    static func codeOffset(m0: Int, linkWidth: Int) -> Int { linkWidth * (1 + m0) }
    static func elementSize(m0: Int, dimension: Int, linkWidth: Int) -> Int { (codeOffset(m0: m0, linkWidth: linkWidth) + dimension + 3) / 4 * 4 }

    public var count: Int { storage.count }
    public var deletedCount: Int { storage.deletedCount }
    public var liveCount: Int { storage.count - storage.deletedCount }

    /// Hot bytes (elements, side arrays, upper links, tombstones, ranges, id map), plus the float32
    /// vectors while they are in this index's own memory (a mapped index reads them from its file).
    public var memoryBytes: Int { hotBytes + (storage.backing == nil ? coldBytes : 0) }

    /// The bytes every search reads: the figure a mapped segment keeps resident.
    public var hotBytes: Int {
        let s = storage
        return s.count * (elementSize + 8 + 1 + 4) + s.upperWords * s.linkWidth + (s.count + 63) / 64 * 8
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
        let q = quantizer
        var bad: [(id: Int64, reason: String)] = []
        var s = 0
        while s < count {
            let v = storage.vectors + s * dimension, c = storage.code(UInt32(s))
            if let j = (0..<dimension).first(where: { q.code(v[$0], $0) != c[$0] }) {
                bad.append((storage.labels[s], "component \(j) has code \(c[j]); its value \(v[j]) quantizes to \(q.code(v[j], j))"))
            }
            s += max(1, step)
        }
        return bad
    }

    // MARK: - Copy and add

    public func copy() -> SQ8HNSWIndex {
        let c = SQ8HNSWIndex(storage: storage.copy(m0: m0, dimension: dimension),
                             dimension: dimension, metric: metric, parameters: parameters, training: training)
        c.efSearch = efSearch
        return c
    }

    /// The float32 HNSW index this one was quantized from (same graph, ids, tombstones, random state),
    /// rebuilt from the cold vectors and the links.
    public func floatIndex() -> HNSWIndex {
        storage.floatIndex(dimension: dimension, metric: metric, parameters: parameters, efSearch: efSearch)
    }

    /// Inserts `vectors` through the float index (see the type's comment), links any node the
    /// insertions left unreachable (`HNSWIndex.linkUnreachableNodes`) and quantizes again with ranges
    /// retrained on every live vector (and the link width chosen again from the new count). Throws as
    /// `HNSWIndex.add`, and then changes nothing.
    public func add(_ vectors: Matrix, ids: [Int64]) throws {
        guard vectors.rows > 0 || ids.count != 0 else { return }
        let f = floatIndex()
        f.reserveCapacity(count + vectors.rows)
        try f.add(vectors, ids: ids)
        f.linkUnreachableNodes()
        storage = SQ8Storage(quantizing: f, training: training, linkWidth: Self.linkWidth(count: f.count))
    }

    /// Links nodes that no search from the entry point can reach (`HNSWIndex.linkUnreachableNodes`),
    /// through the float index; returns how many were linked.
    @discardableResult
    public func linkUnreachableNodes() -> Int {
        let f = floatIndex()
        let linked = f.linkUnreachableNodes()
        if linked > 0 { storage = SQ8Storage(quantizing: f, training: training, linkWidth: linkWidth) }
        return linked
    }
}

/// The arrays of an `SQ8HNSWIndex` (the layout of `HNSWGraph`, with codes in place of the vectors and
/// links `linkWidth` bytes wide): owned, or pointing into a mapped file (`backing`), except the
/// tombstones, which are always owned.
struct SQ8Storage {
    var level0: UnsafeMutableRawPointer
    var labels: UnsafeMutablePointer<Int64>
    var levels: UnsafeMutablePointer<UInt8>
    var upperOffsets: UnsafeMutablePointer<UInt32>
    /// `upperWords` words of `linkWidth` bytes (blocks of a link count and M links, as in `HNSWGraph`).
    var upperPool: UnsafeMutableRawPointer
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
    /// The bytes of a link and of a link count (2 or 4), the codes' offset in an element and the
    /// element's size: `SQ8HNSWIndex.codeOffset` and `elementSize` of `m0`, the dimension and the width.
    let linkWidth: Int
    let codeOffset: Int
    let elementSize: Int
    /// Keeps the mapped bytes alive; nil when every array is owned.
    var backing: AnyObject?
    /// Frees the owned arrays when the last copy of this storage goes.
    var owner: SQ8Owner

    init(level0: UnsafeMutableRawPointer, labels: UnsafeMutablePointer<Int64>, levels: UnsafeMutablePointer<UInt8>,
         upperOffsets: UnsafeMutablePointer<UInt32>, upperPool: UnsafeMutableRawPointer, upperWords: Int,
         tombstones: UnsafeMutablePointer<UInt64>, scales: UnsafeMutablePointer<Float>, offsets: UnsafeMutablePointer<Float>,
         vectors: UnsafeMutablePointer<Float>, count: Int, deletedCount: Int, entryPoint: UInt32, maxLevel: Int,
         rngState: UInt64, slotOf: [Int64: UInt32]?, linkWidth: Int, m0: Int, dimension: Int, backing: AnyObject?) {
        self.level0 = level0; self.labels = labels; self.levels = levels; self.upperOffsets = upperOffsets
        self.upperPool = upperPool; self.upperWords = upperWords; self.tombstones = tombstones
        self.scales = scales; self.offsets = offsets; self.vectors = vectors
        self.count = count; self.deletedCount = deletedCount; self.entryPoint = entryPoint; self.maxLevel = maxLevel
        self.rngState = rngState; self.slotOf = slotOf; self.backing = backing
        self.linkWidth = linkWidth
        codeOffset = SQ8HNSWIndex.codeOffset(m0: m0, linkWidth: linkWidth)
        elementSize = SQ8HNSWIndex.elementSize(m0: m0, dimension: dimension, linkWidth: linkWidth)
        var mapped: [UnsafeMutableRawPointer] = [UnsafeMutableRawPointer(tombstones)]
        let arrays = [level0, UnsafeMutableRawPointer(labels), UnsafeMutableRawPointer(levels), UnsafeMutableRawPointer(upperOffsets),
                      upperPool, UnsafeMutableRawPointer(scales), UnsafeMutableRawPointer(offsets),
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

    /// Copies `n` words of `fromWidth` bytes at `from` into `to` as words of `toWidth` bytes (2 or 4):
    /// links between the 32-bit float graph and a 16-bit sq8 graph (every value fits: links are
    /// slots below a count under 65,536, link counts are at most M0).
    static func copyWords(_ from: UnsafeRawPointer, width fromWidth: Int, to: UnsafeMutableRawPointer, width toWidth: Int, _ n: Int) {
        if fromWidth == toWidth {
            to.copyMemory(from: from, byteCount: n * toWidth)
        } else if toWidth == 2 {
            let src = from.assumingMemoryBound(to: UInt32.self), dst = to.assumingMemoryBound(to: UInt16.self)
            for i in 0..<n { dst[i] = UInt16(truncatingIfNeeded: src[i]) }
        } else {
            let src = from.assumingMemoryBound(to: UInt16.self), dst = to.assumingMemoryBound(to: UInt32.self)
            for i in 0..<n { dst[i] = UInt32(src[i]) }
        }
    }

    /// The codes and copies of `source`'s arrays, its links narrowed to `linkWidth` bytes (2 needs
    /// fewer than 65,536 nodes); ranges trained on its live vectors.
    init(quantizing source: HNSWIndex, training: SQ8Training, linkWidth: Int) {
        precondition(linkWidth == 4 || (linkWidth == 2 && source.count < 1 << 16), "16-bit links need fewer than 65,536 nodes")
        let n = source.count, d = source.dimension, m0 = source.parameters.m0
        let codeOffset = SQ8HNSWIndex.codeOffset(m0: m0, linkWidth: linkWidth)
        let elementSize = SQ8HNSWIndex.elementSize(m0: m0, dimension: d, linkWidth: linkWidth)
        let vectors = Self.allocate(n * d, of: Float.self)
        for s in 0..<n {
            (vectors + s * d).update(from: source.graph.vector(UInt32(s)), count: d)
        }
        let q = SQ8Quantizer(training: training, vectors: vectors, rows: n, dimension: d) { !source.isTombstoned(UInt32($0)) }
        let level0 = UnsafeMutableRawPointer.allocate(byteCount: max(1, n * elementSize), alignment: 64)
        level0.initializeMemory(as: UInt8.self, repeating: 0, count: n * elementSize)
        for s in 0..<n {
            let e = level0 + s * elementSize
            Self.copyWords(source.level0 + s * source.elementSize, width: 4, to: e, width: linkWidth, 1 + m0)
            q.encode(vectors + s * d, into: (e + codeOffset).assumingMemoryBound(to: UInt8.self))
        }
        let pool = UnsafeMutableRawPointer.allocate(byteCount: max(1, source.upperWords * linkWidth), alignment: 64)
        Self.copyWords(source.upperPool, width: 4, to: pool, width: linkWidth, source.upperWords)
        let scales = Self.allocate(d, of: Float.self), offsets = Self.allocate(d, of: Float.self)
        scales.update(from: q.scales, count: d)
        offsets.update(from: q.offsets, count: d)
        self.init(level0: level0, labels: Self.duplicate(source.labels, n), levels: Self.duplicate(source.levels, n),
                  upperOffsets: Self.duplicate(source.upperOffsets, n), upperPool: pool,
                  upperWords: source.upperWords, tombstones: Self.duplicate(source.tombstones, (n + 63) / 64),
                  scales: scales, offsets: offsets, vectors: vectors, count: n, deletedCount: source.deletedCount,
                  entryPoint: source.entryPoint, maxLevel: source.maxLevel, rngState: source.rng.state,
                  slotOf: source.slotOf, linkWidth: linkWidth, m0: m0, dimension: d, backing: nil)
    }

    /// A copy in memory of its own (one bulk copy per array).
    func copy(m0: Int, dimension d: Int) -> SQ8Storage {
        let n = count
        let l0 = UnsafeMutableRawPointer.allocate(byteCount: max(1, n * elementSize), alignment: 64)
        l0.copyMemory(from: level0, byteCount: n * elementSize)
        let pool = UnsafeMutableRawPointer.allocate(byteCount: max(1, upperWords * linkWidth), alignment: 64)
        pool.copyMemory(from: upperPool, byteCount: upperWords * linkWidth)
        return SQ8Storage(level0: l0, labels: Self.duplicate(labels, n), levels: Self.duplicate(levels, n),
                          upperOffsets: Self.duplicate(upperOffsets, n), upperPool: pool,
                          upperWords: upperWords, tombstones: Self.duplicate(tombstones, (n + 63) / 64),
                          scales: Self.duplicate(scales, d), offsets: Self.duplicate(offsets, d),
                          vectors: Self.duplicate(vectors, n * d), count: n, deletedCount: deletedCount,
                          entryPoint: entryPoint, maxLevel: maxLevel, rngState: rngState, slotOf: slotOf,
                          linkWidth: linkWidth, m0: m0, dimension: d, backing: nil)
    }

    /// The float32 index with this graph: elements rebuilt from the links (widened to 32 bits) and the
    /// cold vectors.
    func floatIndex(dimension d: Int, metric: Metric, parameters: HNSWParameters, efSearch: Int) -> HNSWIndex {
        let n = count, m0 = parameters.m0
        let linkBytes = 4 + 4 * m0
        let floatElement = linkBytes + 4 * d
        let l0 = UnsafeMutableRawPointer.allocate(byteCount: max(1, n * floatElement), alignment: 64)
        for s in 0..<n {
            let e = l0 + s * floatElement
            Self.copyWords(level0 + s * elementSize, width: linkWidth, to: e, width: 4, 1 + m0)
            (e + linkBytes).copyMemory(from: vectors + s * d, byteCount: 4 * d)
        }
        let pool = Self.allocate(upperWords, of: UInt32.self)
        Self.copyWords(upperPool, width: linkWidth, to: UnsafeMutableRawPointer(pool), width: 4, upperWords)
        let words = (n + 63) / 64
        let f = HNSWIndex(decodedDimension: d, metric: metric, parameters: parameters, count: n, level0: l0,
                          labels: Self.duplicate(labels, n), levels: Self.duplicate(levels, n),
                          upperOffsets: Self.duplicate(upperOffsets, n), upperPool: pool,
                          upperWords: upperWords, tombstones: Self.duplicate(tombstones, words), tombstoneWords: words,
                          deletedCount: deletedCount, entryPoint: n == 0 ? HNSWIndex.noSlot : entryPoint, maxLevel: maxLevel,
                          rngState: rngState, slotOf: slotOf, backing: nil)
        f.efSearch = efSearch
        return f
    }

    /// The codes of slot `s`.
    @inline(__always)
    func code(_ s: UInt32) -> UnsafePointer<UInt8> {
        UnsafePointer((level0 + (Int(s) &* elementSize &+ codeOffset)).assumingMemoryBound(to: UInt8.self))
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
