/// Layer-0 reachability. Heuristic neighbour selection prunes links in both directions, so a node
/// can end up with no link pointing at it (more often after many inserts into an existing graph, as
/// compaction's merges do, and with parallel inserts): no search can then return it, whatever its
/// ef. Seen as a row the exact scan returns and an exhaustive segment search (ef above the segment's
/// size) does not.
extension HNSWIndex {
    /// Links every layer-0 node that a walk from the entry point does not reach: from its nearest
    /// reached out-neighbour (or, if it has none, the nearest reached node), appended to that node's
    /// list when it has room, else in place of that list's farthest member (which a later pass
    /// links again if it lost its only way in). Up to 4 passes of a breadth-first walk (O(n M0)
    /// each). Returns the number of links added. Exclusive, like `add`; not for an index mapped
    /// read-only from a file (`HNSWCodec.decode(inPlace:)`), whose links cannot change.
    @discardableResult
    public func linkUnreachableNodes() -> Int {
        guard count > 1, entryPoint != Self.noSlot, backing == nil else { return 0 }
        switch metric {
        case .l2: return linkUnreachable(L2Distance.self)
        case .dot: return linkUnreachable(DotDistance.self)
        case .cosine: return linkUnreachable(CosineDistance.self)
        }
    }

    private func linkUnreachable<D: HNSWDistance>(_: D.Type) -> Int {
        let g = graph
        let n = count, dim = dimension
        var added = 0
        for _ in 0..<4 {
            // Breadth-first over layer 0 from the entry point.
            var reached = [Bool](repeating: false, count: n)
            var queue: [UInt32] = [entryPoint]
            reached[Int(entryPoint)] = true
            var head = 0
            while head < queue.count {
                let list = g.links(queue[head], 0)
                head += 1
                let c = Int(list[0])
                if c == 0 { continue }
                for t in 1...c where !reached[Int(list[t])] {
                    reached[Int(list[t])] = true
                    queue.append(list[t])
                }
            }
            if queue.count == n { break }
            var linkedThisPass = 0
            for u in 0..<n where !reached[u] {
                let slot = UInt32(u)
                let own = g.links(slot, 0)
                var best = Self.noSlot
                var bestDistance = Float.infinity
                let c = Int(own[0])
                if c > 0 {
                    for t in 1...c where reached[Int(own[t])] {
                        let d = D.distance(g.vector(slot), g.vector(own[t]), dim)
                        if d < bestDistance { best = own[t]; bestDistance = d }
                    }
                }
                if best == Self.noSlot {
                    for v in queue {
                        let d = D.distance(g.vector(slot), g.vector(v), dim)
                        if d < bestDistance { best = v; bestDistance = d }
                    }
                }
                guard best != Self.noSlot else { continue }
                let list = g.links(best, 0)
                let size = Int(list[0])
                if size < m0 {
                    list[size + 1] = slot
                    list[0] = UInt32(size + 1)
                } else {
                    var worst = 1
                    var worstDistance = -Float.infinity
                    for t in 1...size {
                        let d = D.distance(g.vector(best), g.vector(list[t]), dim)
                        if d > worstDistance { worst = t; worstDistance = d }
                    }
                    list[worst] = slot
                }
                linkedThisPass += 1
            }
            added += linkedThisPass
            if linkedThisPass == 0 { break }
        }
        return added
    }
}
