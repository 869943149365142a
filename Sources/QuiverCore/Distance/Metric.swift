/// How two vectors are compared.
///
/// Internally every index orders candidates by a *distance* (smaller is closer); users see a *score*:
/// - `cosine`: vectors are L2-normalized when they enter an index, distance = 1 - cos, score = cos.
/// - `dot`: distance = -dot, score = dot (higher is closer).
/// - `l2`: distance = squared Euclidean distance, score = Euclidean distance (lower is closer).
public enum Metric: String, Sendable, Codable, CaseIterable {
    case cosine
    case dot
    case l2

    /// Whether a larger score means a closer match (true for cosine and dot, false for L2).
    public var higherScoreIsCloser: Bool { self != .l2 }

    /// Whether vectors are normalized before they are indexed or compared.
    public var normalizes: Bool { self == .cosine }

    /// The internal distance between two vectors of `dimension` floats (already normalized for cosine).
    @inlinable
    public func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dimension: Int) -> Float {
        switch self {
        case .cosine: return 1 - DistanceKernels.dot(a, b, dimension)
        case .dot: return -DistanceKernels.dot(a, b, dimension)
        case .l2: return DistanceKernels.squaredL2(a, b, dimension)
        }
    }

    /// The user-facing score of an internal distance.
    @inlinable
    public func score(fromDistance d: Float) -> Float {
        switch self {
        case .cosine: return 1 - d
        case .dot: return -d
        case .l2: return d.squareRoot()
        }
    }

    /// The internal distance of a user-facing score (the inverse of `score(fromDistance:)`).
    @inlinable
    public func distance(fromScore s: Float) -> Float {
        switch self {
        case .cosine: return 1 - s
        case .dot: return -s
        case .l2: return s * s
        }
    }
}
