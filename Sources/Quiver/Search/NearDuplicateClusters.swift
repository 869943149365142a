/// How near-duplicate pairs are grouped into clusters.
public enum NearDuplicateClustering: String, Sendable, Codable, CaseIterable {
    /// Connected components of the pair graph: documents joined by a chain of pairs share a
    /// cluster (two members of one cluster may be further apart than the threshold).
    case connected
    /// Stricter: every member is within the threshold of the cluster's representative. Documents
    /// in order of most pairs first (earliest written on ties) each found a cluster with their
    /// neighbours not yet clustered; a document whose neighbours are all taken is in no cluster.
    case representative
}

/// One near-duplicate pair: two documents at or above the threshold (`a` written before `b`).
public struct NearDuplicatePair: Sendable, Codable, Equatable {
    public var a: String
    public var b: String
    /// The pair's score: cosine similarity or dot product, or Euclidean distance for l2.
    public var score: Float

    public init(a: String, b: String, score: Float) {
        self.a = a
        self.b = b
        self.score = score
    }
}

/// A group of near-duplicates.
public struct NearDuplicateCluster: Sendable, Codable, Equatable {
    /// The member with the most pairs in the cluster (the earliest written on ties); under
    /// `.representative` clustering, every other member is within the threshold of it.
    public var representative: String
    /// Every member, in the order they were written.
    public var members: [String]
    /// The pairs between members that the join found, each once.
    public var pairs: [NearDuplicatePair]
}

/// Clustering over row numbers (the order documents were written), independent of how the pairs
/// were found: the same pairs give the same clusters, whether from the index or the exact join.
public enum NearDuplicateGrouping {
    /// The clusters of the pairs (`a < b` rows each, any order, no repeats) under `clustering`:
    /// each cluster's rows in ascending order with its representative, clusters ordered by their
    /// first row.
    public static func clusters(_ pairs: [(a: UInt64, b: UInt64)], clustering: NearDuplicateClustering) -> [(representative: UInt64, members: [UInt64])] {
        var neighbours: [UInt64: [UInt64]] = [:]
        for p in pairs {
            neighbours[p.a, default: []].append(p.b)
            neighbours[p.b, default: []].append(p.a)
        }
        var groups: [(representative: UInt64, members: [UInt64])] = []
        switch clustering {
        case .connected:
            var seen = Set<UInt64>()
            for start in neighbours.keys.sorted() where !seen.contains(start) {
                var members: [UInt64] = [start]
                seen.insert(start)
                var i = 0
                while i < members.count {
                    for n in neighbours[members[i]]! where seen.insert(n).inserted { members.append(n) }
                    i += 1
                }
                members.sort()
                groups.append((mostConnected(members, neighbours), members))
            }
        case .representative:
            var taken = Set<UInt64>()
            let order = neighbours.keys.sorted { (neighbours[$0]!.count, $1) > (neighbours[$1]!.count, $0) }
            for r in order where !taken.contains(r) {
                let free = neighbours[r]!.filter { !taken.contains($0) }
                if free.isEmpty { continue }
                let members = ([r] + free).sorted()
                taken.formUnion(members)
                groups.append((r, members))
            }
            groups.sort { $0.members[0] < $1.members[0] }
        }
        return groups
    }

    /// The member with the most neighbours inside `members` (the lowest row on ties).
    private static func mostConnected(_ members: [UInt64], _ neighbours: [UInt64: [UInt64]]) -> UInt64 {
        var best = members[0]
        var bestDegree = -1
        for m in members {
            let d = neighbours[m]!.count
            if d > bestDegree { best = m; bestDegree = d }
        }
        return best
    }
}
