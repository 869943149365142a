/// A row-major matrix of float32: `rows` vectors of `dimension` components each, stored contiguously
/// (`storage.count == rows * dimension`). Every batched call of an index or encoder takes or returns one.
public struct Matrix: Sendable, Equatable {
    public private(set) var rows: Int
    public let dimension: Int
    public private(set) var storage: [Float]

    /// An empty matrix of the given row width.
    public init(dimension: Int) {
        precondition(dimension > 0, "dimension must be positive")
        self.dimension = dimension
        self.rows = 0
        self.storage = []
    }

    /// A matrix over `storage`, whose count must be a multiple of `dimension`.
    public init(dimension: Int, storage: [Float]) {
        precondition(dimension > 0 && storage.count % dimension == 0, "storage of \(storage.count) floats is not a whole number of \(dimension)-d rows")
        self.dimension = dimension
        self.rows = storage.count / dimension
        self.storage = storage
    }

    /// A matrix of the given rows, each of `dimension` components.
    public init(dimension: Int, rows: [[Float]]) {
        var storage = [Float]()
        storage.reserveCapacity(rows.count * dimension)
        for row in rows {
            precondition(row.count == dimension, "a row of \(row.count) components in a \(dimension)-d matrix")
            storage.append(contentsOf: row)
        }
        self.init(dimension: dimension, storage: storage)
    }

    /// Appends one row of `dimension` components.
    public mutating func append(_ row: [Float]) {
        precondition(row.count == dimension, "a row of \(row.count) components in a \(dimension)-d matrix")
        storage.append(contentsOf: row)
        rows += 1
    }

    /// Row `i` as an array (a copy).
    public subscript(row i: Int) -> [Float] {
        Array(storage[i * dimension ..< (i + 1) * dimension])
    }

    /// Calls `body` with a pointer to row `i`; the pointer is valid only inside `body`.
    @inlinable
    public func withRow<R>(_ i: Int, _ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer { try body($0.baseAddress! + i * dimension) }
    }
}
