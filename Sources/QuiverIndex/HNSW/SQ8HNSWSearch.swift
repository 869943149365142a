import CQuiverKernels
import QuiverCore

// Search of an `SQ8HNSWIndex`: the walks of `HNSWWalkable` (greedy descent, then best-first search of
// layer 0 with a result gate) over the codes, each expanded node's fresh neighbours scored in one call
// of the gathered sq8 kernel, then the `ef` results re-scored with the float32 vectors.

/// Per-thread scratch of sq8 searches: an HNSW context (visited set, heaps, neighbour distances) plus
/// the prepared query. One thread at a time.
final class SQ8SearchContext: @unchecked Sendable {
    let graph = HNSWSearchContext()
    var prepared: UnsafeMutablePointer<Float> = .allocate(capacity: 1)
    var preparedCapacity = 0

    deinit { prepared.deallocate() }

    /// Grows `prepared` to `dimension` floats.
    func reservePrepared(_ dimension: Int) {
        if dimension > preparedCapacity {
            reallocate(&prepared, capacity: dimension)
            preparedCapacity = dimension
        }
    }
}

/// A view of the code graph of an `SQ8HNSWIndex` with links of type `Link` (UInt16 or UInt32, the
/// storage's `linkWidth`): `HNSWGraph`'s layout with codes in place of the vectors.
struct SQ8Graph<Link: FixedWidthInteger & UnsignedInteger> {
    let level0: UnsafeRawPointer
    let elementSize: Int
    let codeOffset: Int
    let m: Int
    let upperPool: UnsafePointer<Link>
    let upperOffsets: UnsafePointer<UInt32>

    init(_ s: SQ8Storage, m: Int) {
        level0 = UnsafeRawPointer(s.level0)
        elementSize = s.elementSize
        codeOffset = s.codeOffset
        self.m = m
        upperPool = UnsafePointer(s.upperPool.assumingMemoryBound(to: Link.self))
        upperOffsets = UnsafePointer(s.upperOffsets)
    }

    @inline(__always)
    func links(_ s: UInt32, _ level: Int) -> UnsafePointer<Link> {
        if level == 0 { return (level0 + Int(s) &* elementSize).assumingMemoryBound(to: Link.self) }
        return upperPool + (Int(upperOffsets[Int(s)]) &+ (level &- 1) &* (m &+ 1))
    }

    /// This graph with the prepared query `q`.
    @inline(__always)
    func walk(_ q: UnsafePointer<qk_sq8_query>) -> SQ8Walk<Link> { SQ8Walk(graph: self, query: q) }
}

/// The code graph of an `SQ8HNSWIndex` with a prepared query, for the walks of `HNSWWalkable`: the
/// fresh neighbours of a node are scored in one call of the gathered sq8 kernel (which loads the
/// codes itself: no prefetch hints).
struct SQ8Walk<Link: FixedWidthInteger & UnsignedInteger>: HNSWWalkable {
    let graph: SQ8Graph<Link>
    let query: UnsafePointer<qk_sq8_query>

    @inline(__always)
    func links(_ slot: UInt32, _ level: Int) -> UnsafePointer<Link> { graph.links(slot, level) }

    @inline(__always) func prefetchNode(_ slot: UInt32) {}
    @inline(__always) func prefetchLinks(_ slot: UInt32, _ level: Int) {}

    @inline(__always)
    func distances(_ slots: UnsafePointer<UInt32>, _ n: Int, _ out: UnsafeMutablePointer<Float>) {
        let g = graph
        qk_sq8_distances(SQ8Kernel.best, query, g.level0.assumingMemoryBound(to: UInt8.self) + g.codeOffset,
                         g.elementSize, slots, Int32(n), out)
    }
}

extension SQ8HNSWIndex {
    /// The strategy of a search with `allowed` allowed ids: `scan` by `HNSWIndex.filteredSearch`'s
    /// rule (exact, over the float32 vectors), else the walk on codes past filtered-out nodes (`graph`;
    /// sq8 segments have no ACORN walk).
    public func filteredSearch(allowed: Int, ef: Int? = nil) -> FilteredSearch {
        Double(allowed) <= HNSWIndex.scanFactor * Double(Swift.max(ef ?? efSearch, 1)) * Double(m0) ? .scan : .graph
    }

    /// The members of `bits` within this index's id range (as `HNSWIndex.allowedCount`).
    public func allowedCount(_ bits: Bitset) -> Int {
        storage.idRange.map { bits.count(in: Int(clamping: $0.lowerBound)...Int(clamping: $0.upperBound)) } ?? 0
    }

    /// The walk of the code graph from the entry point (greedy descent, then layer 0 with `gate`) over
    /// links of type `Link`; leaves the list in `ctx.graph.results`.
    private func walk<Link: FixedWidthInteger & UnsignedInteger, G: ResultGate>(_: Link.Type, _ pq: UnsafePointer<qk_sq8_query>,
                                                                                ef: Int, gate: G, context ctx: SQ8SearchContext) {
        let s = storage, walk = SQ8Graph<Link>(s, m: m).walk(pq)
        let ep = s.entryPoint
        let entryD = qk_sq8_distance(SQ8Kernel.best, pq, s.code(ep))
        let (cur, curD) = walk.greedy(entry: ep, entryDistance: entryD, top: s.maxLevel, bottom: 0, context: ctx.graph)
        walk.searchLayer(entry: cur, entryDistance: curD, ef: ef, level: 0, gate: gate, context: ctx.graph)
    }

    /// Reads `parameters.efSearch` (nil: `efSearch`) and `allow`.
    public func search(_ query: UnsafeBufferPointer<Float>, k: Int, parameters: SearchParameters) throws -> [Neighbor] {
        try parameters.validate()
        return try contexts.with { try search(query, k: k, ef: parameters.efSearch, allow: parameters.allow, context: $0) }
    }

    public func search(_ queries: Matrix, k: Int, parameters: SearchParameters) throws -> [[Neighbor]] {
        try parameters.validate()
        return try searchEachRow(queries, k: k) { row in
            // Cannot throw: dimension and k were checked by searchEachRow.
            contexts.with { (try? search(row, k: k, ef: parameters.efSearch, allow: parameters.allow, context: $0)) ?? [] }
        }
    }

    /// The `k` nearest live, allowed vectors to `query`, closest first, with exact distances: the graph
    /// walk on codes with a list of `max(ef ?? efSearch, k)`, whose results are re-scored with the
    /// float32 vectors. A bitset filter allowing few ids (`HNSWIndex.filteredSearch`'s scan rule), or a
    /// walk that finds fewer than `k` allowed nodes, is answered by an exact scan of the allowed
    /// vectors, so a search returns `min(k, allowed live)` results.
    func search(_ query: UnsafeBufferPointer<Float>, k: Int, ef: Int?, allow: AllowFilter?,
                context ctx: SQ8SearchContext) throws -> [Neighbor] {
        try searchChecked(query, k: k, ef: ef, allow: allow, context: ctx)
    }

    func graphScratch(_ context: SQ8SearchContext) -> HNSWSearchContext { context.graph }

    func search<D: HNSWDistance>(_: D.Type, _ q: UnsafePointer<Float>, k: Int, ef: Int, allow: AllowFilter?,
                                 context ctx: SQ8SearchContext) -> [Neighbor] {
        ctx.reservePrepared(dimension)
        let s = storage
        let tomb = UnsafePointer(s.tombstones)
        let live = liveCount
        switch allow {
        case nil:
            if s.deletedCount == 0 { return run(D.self, q, k: k, ef: ef, gate: OpenGate(), mostAllowed: live, scan: false, context: ctx) }
            return run(D.self, q, k: k, ef: ef, gate: LiveGate(tombstones: tomb), mostAllowed: live, scan: false, context: ctx)
        case .bitset(let bits):
            return bits.words.withUnsafeBufferPointer { words in
                let allowed = allowedCount(bits)
                let scan = filteredSearch(allowed: allowed, ef: ef) == .scan
                let gate = BitsetGate(tombstones: tomb, labels: s.labels, words: words.baseAddress ?? tomb,
                                      capacity: words.isEmpty ? 0 : bits.capacity)
                return run(D.self, q, k: k, ef: ef, gate: gate, mostAllowed: min(allowed, live), scan: scan, context: ctx)
            }
        case .predicate(let p):
            let gate = PredicateGate(tombstones: tomb, labels: s.labels, predicate: p)
            return run(D.self, q, k: k, ef: ef, gate: gate, mostAllowed: live, scan: false, context: ctx)
        }
    }

    private func run<D: HNSWDistance, G: ResultGate>(_: D.Type, _ q: UnsafePointer<Float>, k: Int, ef: Int, gate: G,
                                                     mostAllowed: Int, scan: Bool, context ctx: SQ8SearchContext) -> [Neighbor] {
        let want = min(k, mostAllowed)
        if want <= 0 { return [] }
        let s = storage, d = dimension
        var found = 0
        if !scan {
            var prepared = SQ8PreparedQuery(q, metric: metric, scales: s.scales, offsets: s.offsets, dimension: d, into: ctx.prepared)
            withUnsafePointer(to: &prepared.raw) { pq in
                if s.linkWidth == 2 {
                    walk(UInt16.self, pq, ef: ef, gate: gate, context: ctx)
                } else {
                    walk(UInt32.self, pq, ef: ef, gate: gate, context: ctx)
                }
            }
            found = ctx.graph.results.count
        }
        let h = ctx.graph
        var n: Int
        if found >= want {
            // Re-score the list with the float32 vectors and keep the best k.
            n = 0
            var res = h.results
            while res.count > 0 {
                let slot = HNSWKey.slot(~res.popMin())
                h.sorted[n] = HNSWKey.make(D.distance(q, s.vectors + Int(slot) * d, d), slot)
                n += 1
            }
            h.results = res
            var sorted = UnsafeMutableBufferPointer(start: h.sorted, count: n)
            sorted.sort()
            n = min(n, k)
        } else {
            // Exact: every allowed vector.
            var res = h.results
            res.count = 0
            var bound = Float.infinity
            for slot in 0..<UInt32(count) where gate.allows(slot) {
                let dist = D.distance(q, s.vectors + Int(slot) * d, d)
                if dist < bound || res.count < k {
                    let key = ~HNSWKey.make(dist, slot)
                    if res.count < k { res.push(key) } else if key > res.min { res.replaceMin(key) }
                    if res.count >= k { bound = HNSWKey.distance(~res.min) }
                }
            }
            n = res.count
            var i = n
            while i > 0 {
                i -= 1
                h.sorted[i] = ~res.popMin()
            }
            h.results = res
        }
        var out = [Neighbor]()
        out.reserveCapacity(n)
        for i in 0..<n {
            let key = h.sorted[i]
            out.append(Neighbor(id: s.labels[Int(HNSWKey.slot(key))], distance: HNSWKey.distance(key)))
        }
        return out
    }
}
