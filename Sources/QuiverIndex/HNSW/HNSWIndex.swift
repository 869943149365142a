#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuiverCore
import Synchronization

/// Approximate nearest-neighbour search on a Hierarchical Navigable Small World graph (Malkov &
/// Yashunin, 2018): a multi-layer proximity graph; a node's top layer is drawn as floor(-ln(U) * mL)
/// with mL = 1/ln(M); links are chosen by the diversity heuristic (the paper's Algorithm 4); layer 0
/// keeps `2 * M` links per node, upper layers `M`.
///
/// ## Memory (hnswlib's layout)
/// One contiguous block holds, per node, its layer-0 link list and its vector (`4 + 4 * M0 + 4 * d`
/// bytes, no per-node object); labels, levels and upper-layer links live in flat side arrays. A node is
/// addressed by its *slot* (insertion order, UInt32); the caller's `Int64` id maps to it. A loaded index
/// can use the bytes of a mapped segment file in place (`HNSWCodec`); it copies them into its own
/// memory only if vectors are added later.
///
/// ## Thread-safety
/// - `search` (every overload), `contains`, `count`, `memoryBytes`: safe concurrently with each other.
/// - `add`, `markDeleted`, `efSearch`'s setter: exclusive; no other call on this index may overlap them.
///   `add` itself links a batch on several threads (`HNSWParameters.buildThreads`) with per-node locks.
/// - Search contexts: one per thread (`HNSWSearchContext`); the context-less overloads take one from an
///   internal pool.
public final class HNSWIndex: VectorIndex, HNSWSearchFront, @unchecked Sendable {
    public let dimension: Int
    public let metric: Metric
    /// The parameters the index was built with (`efSearch` there is the initial default).
    public let parameters: HNSWParameters
    /// The list size of searches that pass no `ef`; set it only while no search runs.
    public var efSearch: Int
    /// Forces the strategy of filtered searches (benchmarks and tests); nil, the default, lets each
    /// search choose with `filteredSearch(allowed:ef:)`. Set it only while no search runs.
    public var filteredSearchOverride: FilteredSearch?

    let m: Int
    let m0: Int
    let vectorOffset: Int
    let elementSize: Int

    // Flat storage. Slots 0..<count are initialized; level0/labels/levels/upperOffsets have room for
    // `capacity` slots, upperPool for `upperCapacity` words, of which `upperWords` are used.
    var level0: UnsafeMutableRawPointer
    var labels: UnsafeMutablePointer<Int64>
    /// The least and greatest id stored (nil while empty): a bitset filter's allowed count is taken
    /// within it, so that a segment holding some of a collection's rows sees its own selectivity.
    /// Kept by `add`; computed once for a decoded index.
    var idRange: ClosedRange<Int64>?
    var levels: UnsafeMutablePointer<UInt8>
    var upperOffsets: UnsafeMutablePointer<UInt32>
    var upperPool: UnsafeMutablePointer<UInt32>
    var capacity: Int
    var upperWords: Int
    var upperCapacity: Int
    /// Bit s set = slot s tombstoned. Always owned (never mapped): it changes after a segment is sealed.
    var tombstones: UnsafeMutablePointer<UInt64>
    var tombstoneWordCapacity: Int
    public private(set) var count: Int
    public private(set) var deletedCount: Int
    /// The top-layer node, or `noSlot` while the index is empty.
    var entryPoint: UInt32
    var maxLevel: Int
    var rng: SplitMix64
    /// id -> slot, or nil while every slot's id equals the slot (the common dense case, which then
    /// needs no map at all).
    var slotOf: [Int64: UInt32]?
    /// Non-nil when the graph arrays point into a caller's read-only buffer that this keeps alive.
    var backing: AnyObject?
    private let contexts = ContextPool { HNSWSearchContext() }

    static let noSlot = UInt32.max
    /// Slots are UInt32 and `noSlot` is reserved.
    public static let maxCount = Int(UInt32.max) - 1
    static let maxLevelAllowed = 64

    /// An empty index.
    public convenience init(dimension: Int, metric: Metric, parameters: HNSWParameters = HNSWParameters()) throws {
        guard dimension > 0, dimension <= 65_536 else {
            throw IndexError(.invalidParameter, "dimension must be in 1...65536, got \(dimension)")
        }
        try parameters.validate()
        // No slots yet: one-element placeholders that `add` replaces.
        self.init(decodedDimension: dimension, metric: metric, parameters: parameters, count: 0,
                  level0: .allocate(byteCount: 1, alignment: 64), labels: .allocate(capacity: 1), levels: .allocate(capacity: 1),
                  upperOffsets: .allocate(capacity: 1), upperPool: .allocate(capacity: 1), upperWords: 0,
                  tombstones: .allocate(capacity: 1), tombstoneWords: 0, deletedCount: 0, entryPoint: Self.noSlot,
                  maxLevel: 0, rngState: parameters.seed, slotOf: nil, backing: nil)
    }

    /// An index over decoded storage (see `HNSWCodec`), a copy's, or a new index's placeholders; the
    /// pointers are adopted as they are.
    init(decodedDimension dimension: Int, metric: Metric, parameters: HNSWParameters, count: Int,
         level0: UnsafeMutableRawPointer, labels: UnsafeMutablePointer<Int64>, levels: UnsafeMutablePointer<UInt8>,
         upperOffsets: UnsafeMutablePointer<UInt32>, upperPool: UnsafeMutablePointer<UInt32>, upperWords: Int,
         tombstones: UnsafeMutablePointer<UInt64>, tombstoneWords: Int, deletedCount: Int,
         entryPoint: UInt32, maxLevel: Int, rngState: UInt64, slotOf: [Int64: UInt32]?, backing: AnyObject?) {
        self.dimension = dimension
        self.metric = metric
        self.parameters = parameters
        self.efSearch = parameters.efSearch
        m = parameters.m
        m0 = parameters.m0
        vectorOffset = 4 + 4 * m0
        elementSize = vectorOffset + 4 * dimension
        self.count = count
        capacity = count
        self.level0 = level0
        self.labels = labels
        self.levels = levels
        self.upperOffsets = upperOffsets
        self.upperPool = upperPool
        self.upperWords = upperWords
        upperCapacity = upperWords
        self.tombstones = tombstones
        tombstoneWordCapacity = tombstoneWords
        self.deletedCount = deletedCount
        self.entryPoint = entryPoint
        self.maxLevel = maxLevel
        rng = SplitMix64(state: rngState)
        self.slotOf = slotOf
        self.backing = backing
        if count > 0 {
            var lo = Int64.max, hi = Int64.min
            for s in 0..<count { lo = Swift.min(lo, labels[s]); hi = Swift.max(hi, labels[s]) }
            idRange = lo...hi
        }
    }

    deinit {
        if backing == nil {
            level0.deallocate()
            labels.deallocate()
            levels.deallocate()
            upperOffsets.deallocate()
            upperPool.deallocate()
        }
        tombstones.deallocate()
    }

    public var liveCount: Int { count - deletedCount }

    /// Bytes held by the index: the element block, side arrays and id map, at their allocated sizes
    /// (for a mapped index, the mapped bytes it uses in place).
    public var memoryBytes: Int {
        let perSlot = elementSize + 8 + 1 + 4
        let map = (slotOf?.capacity ?? 0) * 12
        return capacity * perSlot + upperCapacity * 4 + tombstoneWordCapacity * 8 + map
    }

    /// The current top layer of the graph (0 for an empty index).
    public var topLevel: Int { maxLevel }

    var graph: HNSWGraph {
        HNSWGraph(level0: level0, elementSize: elementSize, vectorOffset: vectorOffset, dimension: dimension,
                  m: m, m0: m0, upperPool: upperPool, upperOffsets: upperOffsets, levels: levels)
    }

    // MARK: - Ids

    func slot(of id: Int64) -> UInt32? {
        if let map = slotOf { return map[id] }
        return id >= 0 && id < Int64(count) ? UInt32(id) : nil
    }

    @inline(__always)
    func isTombstoned(_ s: UInt32) -> Bool { tombstones[Int(s >> 6)] & (1 << UInt64(s & 63)) != 0 }

    public func contains(_ id: Int64) -> Bool {
        guard let s = slot(of: id) else { return false }
        return !isTombstoned(s)
    }

    @discardableResult
    public func markDeleted(_ id: Int64) -> Bool {
        guard let s = slot(of: id), !isTombstoned(s) else { return false }
        tombstones[Int(s >> 6)] |= 1 << UInt64(s & 63)
        deletedCount += 1
        return true
    }

    // MARK: - Storage

    /// Moves every graph array into owned memory with room for `newCapacity` slots and `newUpper`
    /// upper-layer words; new memory is zeroed (so fresh link lists are empty).
    private func reallocate(capacity newCapacity: Int, upper newUpper: Int) {
        if newCapacity != capacity || backing != nil {
            let l0 = UnsafeMutableRawPointer.allocate(byteCount: max(1, newCapacity * elementSize), alignment: 64)
            l0.copyMemory(from: level0, byteCount: count * elementSize)
            (l0 + count * elementSize).initializeMemory(as: UInt8.self, repeating: 0, count: (newCapacity - count) * elementSize)
            let lb = UnsafeMutablePointer<Int64>.allocate(capacity: max(1, newCapacity))
            lb.initialize(from: labels, count: count)
            let lv = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, newCapacity))
            lv.initialize(from: levels, count: count)
            let uo = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, newCapacity))
            uo.initialize(from: upperOffsets, count: count)
            if backing == nil {
                level0.deallocate(); labels.deallocate(); levels.deallocate(); upperOffsets.deallocate()
            }
            level0 = l0; labels = lb; levels = lv; upperOffsets = uo
            capacity = newCapacity
        }
        if newUpper != upperCapacity || backing != nil {
            let up = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, newUpper))
            up.initialize(from: upperPool, count: upperWords)
            (up + upperWords).initialize(repeating: 0, count: newUpper - upperWords)
            if backing == nil { upperPool.deallocate() }
            upperPool = up
            upperCapacity = newUpper
        }
        backing = nil
        let words = (capacity + 63) / 64
        if words > tombstoneWordCapacity {
            let t = UnsafeMutablePointer<UInt64>.allocate(capacity: words)
            t.initialize(from: tombstones, count: tombstoneWordCapacity)
            (t + tombstoneWordCapacity).initialize(repeating: 0, count: words - tombstoneWordCapacity)
            tombstones.deallocate()
            tombstones = t
            tombstoneWordCapacity = words
        }
    }

    /// Reserves room for `n` vectors in total, so that adding up to `n` allocates nothing more.
    /// Exclusive.
    public func reserveCapacity(_ n: Int) {
        guard n > capacity, n <= Self.maxCount else { return }
        // Expected upper-layer words: a node reaches level >= 1 with probability 1/M, each level costs
        // 1 + M words and the expected number of levels of such a node is M/(M-1).
        let expectedUpper = (n - count) / max(1, m - 1) * (m + 1) + 64
        reallocate(capacity: n, upper: max(upperCapacity, upperWords + expectedUpper))
    }

    // MARK: - Add

    public func add(_ batch: Matrix, ids: [Int64]) throws {
        guard batch.dimension == dimension else {
            throw IndexError(.dimensionMismatch, "vectors of \(batch.dimension) components in a \(dimension)-d index")
        }
        guard ids.count == batch.rows else { throw IndexError(.idCountMismatch, "\(ids.count) ids for \(batch.rows) vectors") }
        let n = batch.rows
        if n == 0 { return }
        guard count + n <= Self.maxCount else {
            throw IndexError(.capacityExceeded, "\(count) + \(n) vectors exceed the \(Self.maxCount) an HNSW index can hold")
        }
        // Ids: stay in the map-free dense mode while every id equals its slot.
        let dense = try continuesDenseIDs(ids, dense: slotOf == nil, count: count) { slot(of: $0) != nil }

        // Levels first: they fix how many upper-layer words the batch needs.
        let mL = 1 / log(Double(m))
        var newLevels = [UInt8](repeating: 0, count: n)
        var upperNeeded = 0
        for i in 0..<n {
            let level = min(Int(-log(rng.nextUnitInterval()) * mL), Self.maxLevelAllowed)
            newLevels[i] = UInt8(level)
            upperNeeded += level * (m + 1)
        }
        let needSlots = count + n
        let newCapacity = needSlots <= capacity && backing == nil ? capacity : max(needSlots, min(Self.maxCount, capacity + capacity / 2))
        let needUpper = upperWords + upperNeeded
        let newUpper = needUpper <= upperCapacity && backing == nil ? upperCapacity : max(needUpper, upperCapacity + upperCapacity / 2)
        if newCapacity != capacity || newUpper != upperCapacity || backing != nil {
            reallocate(capacity: newCapacity, upper: newUpper)
        }

        if !dense {
            if slotOf == nil {
                var map = [Int64: UInt32](minimumCapacity: count + n)
                for s in 0..<count { map[Int64(s)] = UInt32(s) }
                slotOf = map
            }
            for (i, id) in ids.enumerated() { slotOf![id] = UInt32(count + i) }
        }

        // Write vectors, ids, levels and empty link lists of the whole batch before linking any of it:
        // a parallel insert may then reach any node of the batch and find its vector in place.
        let first = count
        batch.storage.withUnsafeBufferPointer { src in
            for i in 0..<n {
                let s = first + i
                let element = level0 + s * elementSize
                element.storeBytes(of: 0, as: UInt32.self)
                let v = (element + vectorOffset).assumingMemoryBound(to: Float.self)
                v.update(from: src.baseAddress! + i * dimension, count: dimension)
                if metric.normalizes { DistanceKernels.normalize(v, dimension) }
                labels[s] = ids[i]
                idRange = Swift.min(idRange?.lowerBound ?? ids[i], ids[i])...Swift.max(idRange?.upperBound ?? ids[i], ids[i])
                let level = Int(newLevels[i])
                levels[s] = UInt8(level)
                if level > 0 {
                    upperOffsets[s] = UInt32(upperWords)
                    for l in 0..<level { upperPool[upperWords + l * (m + 1)] = 0 }
                    upperWords += level * (m + 1)
                } else {
                    upperOffsets[s] = Self.noSlot
                }
                tombstones[s >> 6] &= ~(1 << UInt64(s & 63))
            }
        }
        count = first + n

        switch metric {
        case .l2: link(L2Distance.self, from: first, to: first + n)
        case .dot: link(DotDistance.self, from: first, to: first + n)
        case .cosine: link(CosineDistance.self, from: first, to: first + n)
        }
    }

    private func link<D: HNSWDistance>(_: D.Type, from start: Int, to end: Int) {
        var start = start
        if entryPoint == Self.noSlot {
            entryPoint = UInt32(start)
            maxLevel = Int(levels[start])
            start += 1
        }
        let n = end - start
        if n <= 0 { return }
        let g = graph
        let efC = parameters.efConstruction
        let threads = min(parameters.buildThreads > 0 ? parameters.buildThreads : onlineProcessorCount(), max(1, n / 64))
        if threads <= 1 {
            let ctx = HNSWSearchContext()
            ctx.prepare(nodes: count, dimension: dimension, m0: m0, ef: efC)
            for s in start..<end {
                insert(D.self, slot: UInt32(s), graph: g, efConstruction: efC, locking: NoLocking(), global: nil, context: ctx)
            }
            return
        }
        // Striped node locks: a few thousand mutexes cover any graph size; two threads rarely collide.
        let stripes = 4096
        let mutexes = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: stripes + 1)
        for i in 0...stripes { pthread_mutex_init(mutexes + i, nil) }
        defer {
            for i in 0...stripes { pthread_mutex_destroy(mutexes + i) }
            mutexes.deallocate()
        }
        let locking = StripedLocking(mutexes: mutexes, mask: stripes - 1)
        let global = UncheckedSendable(mutexes + stripes)
        let nodes = count, dim = dimension, m0 = self.m0
        ParallelFor.run(threads, threads: threads) { w in
            let ctx = HNSWSearchContext()
            ctx.prepare(nodes: nodes, dimension: dim, m0: m0, ef: efC)
            var s = start + w
            while s < end {
                self.insert(D.self, slot: UInt32(s), graph: g, efConstruction: efC, locking: locking, global: global.value, context: ctx)
                s += threads
            }
        }
    }

    /// The paper's Algorithm 1 for one node whose vector, level and empty lists are already in place.
    /// `global` (parallel builds) guards the entry point; a node that raises the top level holds it
    /// for its whole insertion, as in hnswlib, so no thread descends from a half-linked entry point.
    private func insert<D: HNSWDistance, L: LinkLocking>(
        _: D.Type, slot: UInt32, graph g: HNSWGraph, efConstruction efC: Int, locking: L,
        global: UnsafeMutablePointer<pthread_mutex_t>?, context ctx: HNSWSearchContext
    ) {
        let level = Int(g.levels[Int(slot)])
        if let global { pthread_mutex_lock(global) }
        let ep = entryPoint
        let top = maxLevel
        let holdsGlobal = level > top
        if let global, !holdsGlobal { pthread_mutex_unlock(global) }

        let q = g.vector(slot)
        var cur = ep
        var curD = D.distance(q, g.vector(ep), dimension)
        let walk = g.walk(D.self, q, locking: locking, context: ctx)
        if top > level {
            (cur, curD) = walk.greedy(entry: cur, entryDistance: curD, top: top, bottom: level, context: ctx)
        }
        var lc = min(level, top)
        while lc >= 0 {
            walk.searchLayer(entry: cur, entryDistance: curD, ef: efC, level: lc, gate: OpenGate(), context: ctx)
            let w = g.drainResults(ctx, limit: efC)
            g.connect(D.self, q, slot: slot, level: lc, candidates: ctx.sorted, count: w, locking: locking, context: ctx)
            cur = HNSWKey.slot(ctx.sorted[0])
            curD = HNSWKey.distance(ctx.sorted[0])
            lc -= 1
        }
        if holdsGlobal {
            entryPoint = slot
            maxLevel = level
            if let global { pthread_mutex_unlock(global) }
        }
    }

    // MARK: - Search

    /// Reads `parameters.efSearch` (nil: `efSearch`) and `allow`; the IVF-PQ fields are ignored.
    public func search(_ query: UnsafeBufferPointer<Float>, k: Int, parameters: SearchParameters) throws -> [Neighbor] {
        try parameters.validate()
        return try contexts.with { try search(query, k: k, ef: parameters.efSearch, allow: parameters.allow, context: $0) }
    }

    public func search(_ queries: Matrix, k: Int, parameters: SearchParameters) throws -> [[Neighbor]] {
        try parameters.validate()
        return try search(queries, k: k, ef: parameters.efSearch, allow: parameters.allow)
    }

    /// Batched search with an explicit list size (`nil` = `efSearch`): queries run in parallel, one
    /// context per worker. Safe concurrently with other searches.
    public func search(_ queries: Matrix, k: Int, ef: Int?, allow: AllowFilter?) throws -> [[Neighbor]] {
        try searchEachRow(queries, k: k) { row in
            // Cannot throw: dimension and k were checked by searchEachRow.
            contexts.with { (try? search(row, k: k, ef: ef, allow: allow, context: $0)) ?? [] }
        }
    }

    /// The hot-path search: the `k` nearest live, allowed vectors to `query` (`dimension` floats),
    /// closest first, with a list of `max(ef ?? efSearch, k)` candidates, using `context`'s memory.
    ///
    /// With a bitset filter the search picks a `FilteredSearch` strategy by the number of allowed ids
    /// (`filteredSearch(allowed:ef:)`): an exact scan of the allowed ids when few are allowed, the ACORN
    /// walk over the allowed nodes in between, the plain walk past filtered-out nodes when most are
    /// allowed; a predicate filter (whose selectivity is unknown) takes the plain walk. Whenever a walk
    /// yields fewer than `k` results while more may be allowed, an exact scan completes them. So a
    /// search returns `min(k, allowed live)` results.
    ///
    /// Safe concurrently with other searches, as long as each uses its own `context`.
    public func search(_ query: UnsafeBufferPointer<Float>, k: Int, ef: Int? = nil, allow: AllowFilter? = nil,
                       context ctx: HNSWSearchContext) throws -> [Neighbor] {
        try searchChecked(query, k: k, ef: ef, allow: allow, context: ctx)
    }

    func graphScratch(_ context: HNSWSearchContext) -> HNSWSearchContext { context }

    func search<D: HNSWDistance>(_: D.Type, _ q: UnsafePointer<Float>, k: Int, ef: Int, allow: AllowFilter?,
                                         context ctx: HNSWSearchContext) -> [Neighbor] {
        let tomb = UnsafePointer(tombstones)
        let live = count - deletedCount
        switch allow {
        case nil:
            if deletedCount == 0 {
                return run(D.self, q, k: k, ef: ef, gate: OpenGate(), mostAllowed: live, strategy: .graph, context: ctx)
            }
            return run(D.self, q, k: k, ef: ef, gate: LiveGate(tombstones: tomb), mostAllowed: live, strategy: .graph, context: ctx)
        case .bitset(let bits):
            return bits.words.withUnsafeBufferPointer { words in
                let allowed = allowedCount(bits)
                let strategy = filteredSearchOverride ?? filteredSearch(allowed: allowed, ef: ef)
                let ef = strategy == .acorn ? acornListSize(ef, allowed: allowed) : ef
                let base = words.baseAddress ?? UnsafePointer(tomb)
                let capacity = words.isEmpty ? 0 : bits.capacity
                if slotOf == nil {
                    // Ids are slots: test the bitset by slot.
                    let gate = SlotBitsetGate(tombstones: tomb, words: base, capacity: min(capacity, count))
                    return run(D.self, q, k: k, ef: ef, gate: gate, mostAllowed: min(allowed, live), strategy: strategy, context: ctx)
                }
                let gate = BitsetGate(tombstones: tomb, labels: labels, words: base, capacity: capacity)
                return run(D.self, q, k: k, ef: ef, gate: gate, mostAllowed: min(allowed, live), strategy: strategy, context: ctx)
            }
        case .predicate(let p):
            let gate = PredicateGate(tombstones: tomb, labels: labels, predicate: p)
            return run(D.self, q, k: k, ef: ef, gate: gate, mostAllowed: live, strategy: filteredSearchOverride ?? .graph, context: ctx)
        }
    }

    private func run<D: HNSWDistance, G: ResultGate>(_: D.Type, _ q: UnsafePointer<Float>, k: Int, ef: Int, gate: G,
                                                     mostAllowed: Int, strategy: FilteredSearch,
                                                     context ctx: HNSWSearchContext) -> [Neighbor] {
        let g = graph
        let want = min(k, mostAllowed)
        if want <= 0 { return [] }
        var found = 0
        if strategy != .scan {
            let ep = entryPoint
            let walk = g.walk(D.self, q, locking: NoLocking(), context: ctx)
            let (cur, curD) = walk.greedy(entry: ep, entryDistance: D.distance(q, g.vector(ep), dimension),
                                          top: maxLevel, bottom: 0, context: ctx)
            if strategy == .acorn {
                ctx.prepare(nodes: count, dimension: dimension, m0: m0, ef: ef)
                g.searchLayerFiltered(D.self, q, entry: cur, entryDistance: curD, ef: ef, gate: gate,
                                      expandBelow: Self.acornExpandBelow(m0: m0), context: ctx)
            } else {
                walk.searchLayer(entry: cur, entryDistance: curD, ef: ef, level: 0, gate: gate, context: ctx)
            }
            found = ctx.results.count
        }
        if found < want {
            // The graph could not reach enough allowed nodes (a selective filter, many tombstones, a
            // filter whose allowed nodes lie far from the query, or a rare unreachable node): answer
            // exactly.
            g.scan(D.self, q, count: count, k: k, gate: gate, context: ctx)
        }
        let n = g.drainResults(ctx, limit: k)
        var out = [Neighbor]()
        out.reserveCapacity(n)
        // The walk scores four neighbours at a time, whose kernel may round differently from the
        // one-vector kernel that the exact scan and the other segment kinds use; the few results
        // are scored again with the latter, so a row's score has the same bits wherever it is found.
        for i in 0..<n {
            let slot = HNSWKey.slot(ctx.sorted[i])
            out.append(Neighbor(id: labels[Int(slot)], distance: D.distance(q, g.vector(slot), dimension)))
        }
        // Re-sorted only if a rounding difference swapped neighbours (stable otherwise).
        if zip(out, out.dropFirst()).contains(where: { $0.distance > $1.distance }) {
            out = out.enumerated().sorted { ($0.element.distance, $0.offset) < ($1.element.distance, $1.offset) }.map(\.element)
        }
        return out
    }
}
