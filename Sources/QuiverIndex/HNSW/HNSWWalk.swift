import QuiverCore

// The two graph walks of HNSW search (the greedy descent and the best-first search of one layer),
// written once for every graph whose nodes can be scored against a query: the float32 graph of
// `HNSWIndex` (`FloatWalk`) and the code graph of `SQ8HNSWIndex` (`SQ8Walk`). A walk is generic over
// its `HNSWWalkable`, whose requirements are small inlined functions, so each caller gets a
// specialized copy with no dynamic dispatch in the loops.

/// A graph with a query bound to it, as the walks need it: where a node's link lists live (in words
/// of `Link`: 32 bits in float32 graphs, 16 or 32 in sq8 graphs) and how the distances from the query
/// to a batch of nodes are computed.
protocol HNSWWalkable {
    /// A link list's word: the count, and each link (a slot).
    associatedtype Link: FixedWidthInteger & UnsignedInteger
    /// The link list of `slot` at `level`: word 0 is the count, then the links.
    func links(_ slot: UInt32, _ level: Int) -> UnsafePointer<Link>
    /// A hint that `slot` will be scored soon (start loading what `distances` reads of it).
    func prefetchNode(_ slot: UInt32)
    /// A hint that the link list of `slot` at `level` will be read soon.
    func prefetchLinks(_ slot: UInt32, _ level: Int)
    /// out[j] = the distance from the query to slots[j], for j < n (smaller is closer).
    func distances(_ slots: UnsafePointer<UInt32>, _ n: Int, _ out: UnsafeMutablePointer<Float>)
}

extension HNSWWalkable {
    /// The `n` links at `list` as slots: `list` itself when links are 32-bit, else widened into
    /// `buffer` (the test is on the type, so a specialized walk keeps one branch).
    @inline(__always)
    func slots(_ list: UnsafePointer<Link>, _ n: Int, _ buffer: UnsafeMutablePointer<UInt32>) -> UnsafePointer<UInt32> {
        if Link.self == UInt32.self { return UnsafeRawPointer(list).assumingMemoryBound(to: UInt32.self) }
        var j = 0
        while j < n {
            buffer[j] = UInt32(truncatingIfNeeded: list[j])
            j &+= 1
        }
        return UnsafePointer(buffer)
    }

    /// Greedy descent (search with ef = 1) from `entry` through levels `top` down to `bottom + 1`;
    /// returns the closest node found and its distance. Uses `ctx.scores` (and `ctx.pending` for
    /// 16-bit links).
    @inline(__always)
    func greedy(entry: UInt32, entryDistance: Float, top: Int, bottom: Int, context ctx: HNSWSearchContext) -> (UInt32, Float) {
        let out = ctx.scores
        var cur = entry
        var curD = entryDistance
        var level = top
        while level > bottom {
            var changed = true
            while changed {
                changed = false
                let list = links(cur, level)
                let n = Int(list[0])
                let neighbours = slots(list + 1, n, ctx.pending)
                var j = 0
                while j < n {
                    prefetchNode(neighbours[j])
                    j &+= 1
                }
                // The best strictly closer neighbour becomes `cur`.
                distances(neighbours, n, out)
                var i = 0
                while i < n {
                    if out[i] < curD {
                        curD = out[i]
                        cur = neighbours[i]
                        changed = true
                    }
                    i &+= 1
                }
            }
            level &-= 1
        }
        return (cur, curD)
    }

    /// Best-first search of one layer (the paper's Algorithm 2, hnswlib's searchBaseLayer): on return
    /// `ctx.results` holds up to `ef` results admitted by `gate` (complemented keys: a max-heap).
    /// Every node reached is expanded while it may improve the results, admitted or not, so a filter
    /// makes the search explore further instead of returning fewer results.
    @inline(__always)
    func searchLayer<G: ResultGate>(entry: UInt32, entryDistance: Float, ef: Int, level: Int, gate: G,
                                    context ctx: HNSWSearchContext) {
        var search = BestFirst(entry: entry, entryDistance: entryDistance, ef: ef, gate: gate, context: ctx)
        let visited = search.visited, tag = search.tag
        let pending = ctx.pending
        let out = ctx.scores
        while let c = search.next() {
            let list = links(c, level)
            let n = Int(list[0])
            // Two passes (as FAISS does): first mark the unvisited neighbours and start loading all
            // of them, then score them in one call; the loads of a whole neighbourhood then overlap
            // instead of each distance waiting for its own node.
            var fresh = 0
            if n > 0 { prefetch(visited + Int(list[1])) }
            var j = 1
            while j <= n {
                let nb = UInt32(truncatingIfNeeded: list[j])
                j &+= 1
                if j <= n { prefetch(visited + Int(list[j])) }
                if visited[Int(nb)] == tag { continue }
                visited[Int(nb)] = tag
                pending[fresh] = nb
                fresh &+= 1
                prefetchNode(nb)
            }
            distances(pending, fresh, out)
            var i = 0
            while i < fresh {
                // The best candidate is expanded next: fetch its link list early.
                if search.offer(pending[i], out[i], gate: gate) { prefetchLinks(search.best, level) }
                i &+= 1
            }
        }
        search.finish(ctx)
    }
}

/// The state of a best-first search (the paper's C and W): a min-heap of candidates to expand, a
/// max-heap of at most `ef` results admitted by a gate, the bound (the worst result once there are
/// `ef`) past which a node neither becomes a candidate nor a result, and the visited set's tag.
/// The heaps are the context's, taken at the start and handed back by `finish`.
struct BestFirst {
    var candidates: KeyHeap
    var results: KeyHeap
    var bound = Float.infinity
    let ef: Int
    let visited: UnsafeMutablePointer<UInt16>
    let tag: UInt16

    /// A search from `entry`, which is visited, a candidate, and a result if `gate` admits it.
    @inline(__always)
    init<G: ResultGate>(entry: UInt32, entryDistance: Float, ef: Int, gate: G, context ctx: HNSWSearchContext) {
        candidates = ctx.candidates
        results = ctx.results
        candidates.count = 0
        results.count = 0
        self.ef = ef
        visited = ctx.visited
        tag = ctx.nextGeneration()
        visited[Int(entry)] = tag
        let entryKey = HNSWKey.make(entryDistance, entry)
        candidates.push(entryKey)
        if gate.allows(entry) {
            results.push(~entryKey)
            if ef <= 1 { bound = entryDistance }
        }
    }

    /// The closest candidate, removed, or nil when none is left that may improve the results.
    @inline(__always)
    mutating func next() -> UInt32? {
        guard candidates.count > 0 else { return nil }
        let c = candidates.popMin()
        return HNSWKey.distance(c) > bound ? nil : HNSWKey.slot(c)
    }

    /// The closest candidate (there is one after an `offer` that returned true).
    @inline(__always)
    var best: UInt32 { HNSWKey.slot(candidates.min) }

    /// Takes `slot` at distance `d` as a candidate, and as a result if `gate` admits it, when it is
    /// within the bound; returns whether it was taken.
    @inline(__always)
    mutating func offer<G: ResultGate>(_ slot: UInt32, _ d: Float, gate: G) -> Bool {
        guard d < bound else { return false }
        let key = HNSWKey.make(d, slot)
        candidates.push(key)
        if gate.allows(slot) {
            if results.count < ef {
                results.push(~key)
            } else {
                results.replaceMin(~key)
            }
            if results.count >= ef { bound = HNSWKey.distance(~results.min) }
        }
        return true
    }

    /// Hands the heaps back to `ctx` (`ctx.results` then holds the results, complemented keys).
    @inline(__always)
    func finish(_ ctx: HNSWSearchContext) {
        ctx.candidates = candidates
        ctx.results = results
    }
}

/// The float32 graph of an `HNSWIndex` with a query: four distances at a time, vectors and link
/// lists prefetched, link lists read through `locking` (a copy into `buffer` under a parallel build).
struct FloatWalk<D: HNSWDistance, L: LinkLocking>: HNSWWalkable {
    let graph: HNSWGraph
    let query: UnsafePointer<Float>
    let locking: L
    let buffer: UnsafeMutablePointer<UInt32>

    @inline(__always)
    func links(_ slot: UInt32, _ level: Int) -> UnsafePointer<UInt32> {
        locking.read(graph, slot, level, buffer)
    }

    @inline(__always)
    func prefetchNode(_ slot: UInt32) { prefetch(graph.vector(slot)) }

    @inline(__always)
    func prefetchLinks(_ slot: UInt32, _ level: Int) { prefetch(graph.links(slot, level)) }

    @inline(__always)
    func distances(_ slots: UnsafePointer<UInt32>, _ n: Int, _ out: UnsafeMutablePointer<Float>) {
        let g = graph, q = query, dim = graph.dimension
        var i = 0
        while i &+ 4 <= n {
            let ds = D.distance4(q, g.vector(slots[i]), g.vector(slots[i &+ 1]), g.vector(slots[i &+ 2]),
                                 g.vector(slots[i &+ 3]), dim)
            out[i] = ds[0]
            out[i &+ 1] = ds[1]
            out[i &+ 2] = ds[2]
            out[i &+ 3] = ds[3]
            i &+= 4
        }
        while i < n {
            out[i] = D.distance(q, g.vector(slots[i]), dim)
            i &+= 1
        }
    }
}

extension HNSWGraph {
    /// This graph with the query `q`, links read through `locking` (copies into `ctx.linkCopy`).
    @inline(__always)
    func walk<D: HNSWDistance, L: LinkLocking>(_: D.Type, _ q: UnsafePointer<Float>, locking: L,
                                               context ctx: HNSWSearchContext) -> FloatWalk<D, L> {
        FloatWalk(graph: self, query: q, locking: locking, buffer: ctx.linkCopy)
    }
}
