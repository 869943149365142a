#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuiverCore

// The algorithms of HNSW (Malkov & Yashunin 2018) over the flat memory of `HNSWIndex`, written against
// a plain struct of raw pointers (`HNSWGraph`) so the hot loops see no class, no Array and no ARC.
// Generic parameters pick the distance kernel, the result filter and the locking once per call, and
// each combination is specialized by the compiler.

/// The distance of a metric, chosen at compile time in the hot loops (smaller is closer).
protocol HNSWDistance {
    static func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float
    /// Distances from `q` to four vectors at once.
    static func distance4(_ q: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                          _ c: UnsafePointer<Float>, _ d: UnsafePointer<Float>, _ n: Int) -> SIMD4<Float>
}

enum L2Distance: HNSWDistance {
    @inline(__always)
    static func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        DistanceKernels.squaredL2(a, b, n)
    }
    @inline(__always)
    static func distance4(_ q: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                          _ c: UnsafePointer<Float>, _ d: UnsafePointer<Float>, _ n: Int) -> SIMD4<Float> {
        DistanceKernels.squaredL2x4(q, a, b, c, d, n)
    }
}

enum DotDistance: HNSWDistance {
    @inline(__always)
    static func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        -DistanceKernels.dot(a, b, n)
    }
    @inline(__always)
    static func distance4(_ q: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                          _ c: UnsafePointer<Float>, _ d: UnsafePointer<Float>, _ n: Int) -> SIMD4<Float> {
        -DistanceKernels.dot4(q, a, b, c, d, n)
    }
}

/// Cosine on normalized vectors: 1 - dot.
enum CosineDistance: HNSWDistance {
    @inline(__always)
    static func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        1 - DistanceKernels.dot(a, b, n)
    }
    @inline(__always)
    static func distance4(_ q: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                          _ c: UnsafePointer<Float>, _ d: UnsafePointer<Float>, _ n: Int) -> SIMD4<Float> {
        1 - DistanceKernels.dot4(q, a, b, c, d, n)
    }
}

/// Decides whether a slot may enter the result list. Traversal ignores gates: a filtered-out or
/// tombstoned node still leads the search to its neighbours.
protocol ResultGate {
    func allows(_ slot: UInt32) -> Bool
}

/// No filter, no tombstones.
struct OpenGate: ResultGate {
    @inline(__always) func allows(_ slot: UInt32) -> Bool { true }
}

/// Tombstones only.
struct LiveGate: ResultGate {
    let tombstones: UnsafePointer<UInt64>
    @inline(__always) func allows(_ slot: UInt32) -> Bool {
        tombstones[Int(slot >> 6)] & (1 << UInt64(slot & 63)) == 0
    }
}

/// Tombstones, then a bitset over ids.
struct BitsetGate: ResultGate {
    let tombstones: UnsafePointer<UInt64>
    let labels: UnsafePointer<Int64>
    let words: UnsafePointer<UInt64>
    let capacity: Int
    @inline(__always) func allows(_ slot: UInt32) -> Bool {
        guard tombstones[Int(slot >> 6)] & (1 << UInt64(slot & 63)) == 0 else { return false }
        let id = labels[Int(slot)]
        guard id >= 0 && id < Int64(capacity) else { return false }
        return words[Int(id >> 6)] & (1 << UInt64(id & 63)) != 0
    }
}

/// Tombstones, then a bitset indexed by slot: `BitsetGate` for an index whose ids are its slots
/// (no id map), which saves the label load on every test.
struct SlotBitsetGate: ResultGate {
    let tombstones: UnsafePointer<UInt64>
    let words: UnsafePointer<UInt64>
    let capacity: Int
    @inline(__always) func allows(_ slot: UInt32) -> Bool {
        guard Int(slot) < capacity else { return false }
        let w = Int(slot >> 6), bit = UInt64(1) << UInt64(slot & 63)
        return tombstones[w] & bit == 0 && words[w] & bit != 0
    }
}

/// Tombstones, then a predicate over ids.
struct PredicateGate: ResultGate {
    let tombstones: UnsafePointer<UInt64>
    let labels: UnsafePointer<Int64>
    let predicate: (Int64) -> Bool
    @inline(__always) func allows(_ slot: UInt32) -> Bool {
        guard tombstones[Int(slot >> 6)] & (1 << UInt64(slot & 63)) == 0 else { return false }
        return predicate(labels[Int(slot)])
    }
}

/// How link lists are read and written: without locks (searches, serial builds), or under striped
/// per-node mutexes during a parallel build (hnswlib's scheme: a thread holds at most one node lock
/// at a time, so there is no lock order to get wrong).
protocol LinkLocking {
    /// The link list of `slot` at `level` (word 0 = count, then the links), or a copy of it taken
    /// under the node's lock into `buffer`.
    func read(_ g: HNSWGraph, _ slot: UInt32, _ level: Int, _ buffer: UnsafeMutablePointer<UInt32>) -> UnsafePointer<UInt32>
    func lock(_ slot: UInt32)
    func unlock(_ slot: UInt32)
}

struct NoLocking: LinkLocking {
    @inline(__always)
    func read(_ g: HNSWGraph, _ slot: UInt32, _ level: Int, _ buffer: UnsafeMutablePointer<UInt32>) -> UnsafePointer<UInt32> {
        UnsafePointer(g.links(slot, level))
    }
    @inline(__always) func lock(_ slot: UInt32) {}
    @inline(__always) func unlock(_ slot: UInt32) {}
}

struct StripedLocking: LinkLocking {
    let mutexes: UnsafeMutablePointer<pthread_mutex_t>
    let mask: Int

    @inline(__always)
    func read(_ g: HNSWGraph, _ slot: UInt32, _ level: Int, _ buffer: UnsafeMutablePointer<UInt32>) -> UnsafePointer<UInt32> {
        lock(slot)
        let list = g.links(slot, level)
        buffer.update(from: list, count: Int(list[0]) + 1)
        unlock(slot)
        return UnsafePointer(buffer)
    }
    @inline(__always) func lock(_ slot: UInt32) { pthread_mutex_lock(mutexes + (Int(slot) & mask)) }
    @inline(__always) func unlock(_ slot: UInt32) { pthread_mutex_unlock(mutexes + (Int(slot) & mask)) }
}

/// A view of the flat memory of an HNSW graph (owned by `HNSWIndex`, or by a mapped file).
///
/// Layout, per slot s (hnswlib's): one element of `elementSize` bytes at `level0 + s * elementSize`:
/// `count: UInt32, links: [UInt32; m0], vector: [Float; dimension]`. Nodes whose level L >= 1 also own
/// L blocks of `1 + m` words in `upperPool`, starting at `upperOffsets[s]`: for level l, the block at
/// `upperOffsets[s] + (l - 1) * (1 + m)` holds `count, links[m]`.
/// Invariants: every count <= the layer's capacity (m0 or m); every link < the number of slots.
struct HNSWGraph {
    let level0: UnsafeMutableRawPointer
    let elementSize: Int
    let vectorOffset: Int
    let dimension: Int
    let m: Int
    let m0: Int
    let upperPool: UnsafeMutablePointer<UInt32>
    let upperOffsets: UnsafeMutablePointer<UInt32>
    let levels: UnsafeMutablePointer<UInt8>

    @inline(__always)
    func vector(_ s: UInt32) -> UnsafePointer<Float> {
        UnsafePointer((level0 + (Int(s) &* elementSize &+ vectorOffset)).assumingMemoryBound(to: Float.self))
    }

    @inline(__always)
    func links(_ s: UInt32, _ level: Int) -> UnsafeMutablePointer<UInt32> {
        if level == 0 { return (level0 + Int(s) &* elementSize).assumingMemoryBound(to: UInt32.self) }
        return upperPool + (Int(upperOffsets[Int(s)]) &+ (level &- 1) &* (m &+ 1))
    }

    /// Best-first search of layer 0 restricted to the nodes `gate` admits (ACORN-1, Patel et al.
    /// 2024): only admitted nodes are scored, enter the candidate list and are expanded, so a filter
    /// that admits a fraction s of the nodes costs about ef expansions of admitted nodes instead of
    /// the plain walk's ef / s. The subgraph of admitted nodes alone falls apart when s is small, so a
    /// node with fewer than `expandBelow` admitted neighbours also looks through each of its
    /// filtered-out neighbours to *their* admitted neighbours (two hops), until `m0` admitted
    /// neighbours are listed: the expansion that keeps the predicate subgraph connected without
    /// building a denser graph (ACORN-gamma) for it. `entry` is scored but need not be admitted.
    /// On return `ctx.results` holds up to `ef` admitted results (complemented keys: a max-heap).
    @inline(__always)
    func searchLayerFiltered<D: HNSWDistance, G: ResultGate>(
        _: D.Type, _ q: UnsafePointer<Float>, entry: UInt32, entryDistance: Float, ef: Int, gate: G,
        expandBelow: Int, context ctx: HNSWSearchContext
    ) {
        var search = BestFirst(entry: entry, entryDistance: entryDistance, ef: ef, gate: gate, context: ctx)
        let visited = search.visited, tag = search.tag
        let pending = ctx.pending
        let blockedList = ctx.selected
        let out = ctx.scores
        let scorer = walk(D.self, q, locking: NoLocking(), context: ctx)
        let limit = m0

        while let c = search.next() {
            let list = UnsafePointer(links(c, 0))
            let n = Int(list[0])
            // The admitted neighbours, in link order (closest first for the links a node chose itself),
            // truncated to `limit`; `listed` counts visited ones too, so the truncation depends on the
            // graph and the filter only, as ACORN's neighbour lists do. Filtered-out neighbours are
            // gathered in `blockedList` for the second hop.
            var fresh = 0
            var listed = 0
            var blocked = 0
            var j = 1
            while j <= n {
                let nb = list[j]
                j &+= 1
                if gate.allows(nb) {
                    if listed < limit {
                        listed &+= 1
                        if visited[Int(nb)] != tag {
                            visited[Int(nb)] = tag
                            pending[fresh] = nb
                            fresh &+= 1
                            prefetch(vector(nb))
                        }
                    }
                } else {
                    blockedList[blocked] = nb
                    blocked &+= 1
                    prefetch(links(nb, 0))
                }
            }
            if listed < expandBelow {
                // Two hops: the admitted neighbours of the filtered-out neighbours. Those are never
                // marked visited (they are not scored), so another node may expand through them too.
                var b = 0
                while b < blocked && listed < limit {
                    let via = blockedList[b]
                    b &+= 1
                    let second = UnsafePointer(links(via, 0))
                    let n2 = Int(second[0])
                    var t = 1
                    while t <= n2 && listed < limit {
                        let nb = second[t]
                        t &+= 1
                        if visited[Int(nb)] == tag || !gate.allows(nb) { continue }
                        visited[Int(nb)] = tag
                        listed &+= 1
                        pending[fresh] = nb
                        fresh &+= 1
                        prefetch(vector(nb))
                    }
                }
            }
            // Every node scored here is admitted.
            scorer.distances(pending, fresh, out)
            var i = 0
            while i < fresh {
                if search.offer(pending[i], out[i], gate: OpenGate()) { prefetch(links(search.best, 0)) }
                i &+= 1
            }
        }
        search.finish(ctx)
    }

    /// Exact scan of every slot that `gate` admits into `ctx.results` (bounded to `k`).
    func scan<D: HNSWDistance, G: ResultGate>(
        _: D.Type, _ q: UnsafePointer<Float>, count: Int, k: Int, gate: G, context ctx: HNSWSearchContext
    ) {
        var res = ctx.results
        res.count = 0
        var bound = Float.infinity
        for s in 0..<UInt32(count) where gate.allows(s) {
            let d = D.distance(q, vector(s), dimension)
            if d < bound || res.count < k {
                let key = ~HNSWKey.make(d, s)
                if res.count < k { res.push(key) } else if key > res.min { res.replaceMin(key) }
                if res.count >= k { bound = HNSWKey.distance(~res.min) }
            }
        }
        ctx.results = res
    }

    /// Drains `ctx.results` into `ctx.sorted`, closest first, keeping the best `limit`; returns the count.
    @inline(__always)
    func drainResults(_ ctx: HNSWSearchContext, limit: Int) -> Int {
        var res = ctx.results
        while res.count > limit { _ = res.popMin() }
        let n = res.count
        var i = n
        while i > 0 {
            i &-= 1
            ctx.sorted[i] = ~res.popMin()
        }
        ctx.results = res
        return n
    }

    /// The paper's Algorithm 4 (hnswlib's getNeighborsByHeuristic2): from `count` candidate keys sorted
    /// closest first, keep a candidate only if it is closer to the base than to every candidate kept so
    /// far, up to `limit`; this spreads links across directions. Writes the kept slots to `out`.
    @inline(__always)
    func selectNeighbors<D: HNSWDistance>(
        _: D.Type, _ candidates: UnsafePointer<UInt64>, count: Int, limit: Int, out: UnsafeMutablePointer<UInt32>
    ) -> Int {
        if count < limit {
            for i in 0..<count { out[i] = HNSWKey.slot(candidates[i]) }
            return count
        }
        var kept = 0
        var i = 0
        while i < count && kept < limit {
            let c = HNSWKey.slot(candidates[i])
            let dc = HNSWKey.distance(candidates[i])
            let vc = vector(c)
            var good = true
            var j = 0
            while j < kept {
                if D.distance(vc, vector(out[j]), dimension) < dc {
                    good = false
                    break
                }
                j &+= 1
            }
            if good {
                out[kept] = c
                kept &+= 1
            }
            i &+= 1
        }
        return kept
    }

    /// Links node `q` at `level` to the selected neighbours `w` (sorted keys, `count` of them) and each
    /// of those back to `q`, pruning a full list with the heuristic (capacity m0 on layer 0, else m).
    @inline(__always)
    func connect<D: HNSWDistance, L: LinkLocking>(
        _: D.Type, _ q: UnsafePointer<Float>, slot: UInt32, level: Int, candidates w: UnsafePointer<UInt64>, count: Int,
        locking: L, context ctx: HNSWSearchContext
    ) {
        let selected = ctx.selected
        let nSel = selectNeighbors(D.self, w, count: count, limit: m, out: selected)
        locking.lock(slot)
        let own = links(slot, level)
        own[0] = UInt32(nSel)
        (own + 1).update(from: selected, count: nSel)
        locking.unlock(slot)

        let capacity = level == 0 ? m0 : m
        let prune = ctx.prune
        for i in 0..<nSel {
            let nb = selected[i]
            locking.lock(nb)
            let list = links(nb, level)
            let n = Int(list[0])
            if n < capacity {
                list[n + 1] = slot
                list[0] = UInt32(n + 1)
            } else {
                // The list is full: keep the best `capacity` of its links plus `slot`, by the heuristic
                // with `nb` as the base. Insertion sort: at most m0 + 1 keys.
                let vnb = vector(nb)
                prune[0] = HNSWKey.make(D.distance(vnb, q, dimension), slot)
                var c = 1
                for j in 1...n {
                    let other = list[j]
                    let key = HNSWKey.make(D.distance(vnb, vector(other), dimension), other)
                    var p = c
                    while p > 0 && prune[p - 1] > key {
                        prune[p] = prune[p - 1]
                        p -= 1
                    }
                    prune[p] = key
                    c += 1
                }
                let kept = selectNeighbors(D.self, prune, count: c, limit: capacity, out: list + 1)
                list[0] = UInt32(kept)
            }
            locking.unlock(nb)
        }
    }
}
