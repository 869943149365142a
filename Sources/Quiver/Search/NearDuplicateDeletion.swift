/// Which member of a near-duplicate cluster `Collection.deletions` keeps.
public enum NearDuplicateKeep: Sendable, Equatable, CustomStringConvertible {
    /// The member written first (the others are later copies).
    case first
    /// The member with the longest text (in characters; the first written on ties).
    case longest
    /// The member with the greatest value of this metadata field: numbers by value, strings in
    /// byte order (the first written on ties; members without the field, or with a value of
    /// another type than the greatest's, lose; a cluster where no member has it keeps its first).
    case field(String)

    /// `first`, `longest`, `field:<name>`, or any other word as a field name.
    public init(parsing text: String) {
        switch text {
        case "first": self = .first
        case "longest": self = .longest
        default: self = .field(text.hasPrefix("field:") ? String(text.dropFirst(6)) : text)
        }
    }

    public var description: String {
        switch self {
        case .first: return "first"
        case .longest: return "longest"
        case .field(let f): return "field:\(f)"
        }
    }
}

/// What deleting one cluster's duplicates does: the member kept and the others.
public struct NearDuplicateDeletion: Sendable, Codable, Equatable {
    public var keep: String
    public var delete: [String]
}

extension Collection {
    /// What deleting all but one member of each cluster would do under `keep` (nothing is deleted:
    /// the dry run). A field rule naming a field no document of the collection has is refused.
    public func deletions(_ clusters: [NearDuplicateCluster], keep: NearDuplicateKeep) throws -> [NearDuplicateDeletion] {
        if case .field(let f) = keep, !(try fields().contains { $0.field == f && $0.documents > 0 }) {
            throw QuiverError.invalidArgument("--keep names field \(MessageText.quoted(f)), which no document of '\(name)' has (keep first, longest or a metadata field)")
        }
        return try clusters.map { cluster in
            let documents = try get(ids: cluster.members)
            // Members deleted since the report are neither kept nor deleted.
            let present = zip(cluster.members, documents).compactMap { id, d in d.map { (id: id, document: $0) } }
            guard let kept = Self.keeper(present.map { $0.document }, keep) else { return NearDuplicateDeletion(keep: "", delete: []) }
            return NearDuplicateDeletion(keep: kept.id, delete: present.map { $0.id }.filter { $0 != kept.id })
        }.filter { !$0.keep.isEmpty }
    }

    /// The member `keep` picks among `members` (in write order); nil when there are none.
    static func keeper(_ members: [Document], _ keep: NearDuplicateKeep) -> Document? {
        guard var best = members.first else { return nil }
        switch keep {
        case .first:
            return best
        case .longest:
            for m in members.dropFirst() where (m.text?.count ?? 0) > (best.text?.count ?? 0) { best = m }
            return best
        case .field(let f):
            for m in members.dropFirst() where Self.greater(m.metadata[f], than: best.metadata[f]) { best = m }
            return best
        }
    }

    /// Whether field value `a` beats `b` under the field rule: any number or string beats a
    /// missing value; numbers compare by value, strings in byte order; other pairs do not.
    private static func greater(_ a: MetadataValue?, than b: MetadataValue?) -> Bool {
        switch (a, b) {
        case (let x?, nil) where x.doubleValue != nil || x.stringValue != nil: return true
        case (let x?, let y?):
            if let p = x.doubleValue, let q = y.doubleValue { return p > q }
            if let p = x.stringValue, let q = y.stringValue { return q.utf8.lexicographicallyPrecedes(p.utf8) }
            return y.doubleValue == nil && y.stringValue == nil && (x.doubleValue != nil || x.stringValue != nil)
        default: return false
        }
    }

    /// Carries out `deletions`: each cluster's deletions as one atomic batch through the log (a
    /// crash leaves every cluster either untouched or done). `progress` after each cluster.
    /// Returns the number of documents deleted.
    @discardableResult
    public func apply(_ deletions: [NearDuplicateDeletion], progress: ((Int) -> Void)? = nil) throws -> Int {
        var deleted = 0
        for (i, d) in deletions.enumerated() {
            deleted += try delete(ids: d.delete)
            progress?(i + 1)
        }
        return deleted
    }
}
