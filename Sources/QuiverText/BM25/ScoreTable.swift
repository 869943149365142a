/// The running BM25 sums of one query, by document id, in one of two layouts:
/// - direct: an array over the query's id range (`first...first + capacity - 1`), the slot of a
///   document its id less `first`, chosen when the range is no wider than twice the postings the
///   query sums (a query of common terms: postings sorted by id then stream through memory);
/// - hashed: an open-addressing hash table (linear probing, Fibonacci hashing) that starts large
///   enough for the sum of the query terms' document frequencies (which bounds the documents that
///   can score) and doubles if a source's figures understate it.
/// Either replaces a `[Int64: Double]`, whose SipHash hashing and rehashing as it grew were a third
/// of a query's time in BM25Bench (perf, SciFact). An id outside a direct table's range (a source
/// whose bounds were wrong) turns it into a hashed one.
///
/// A struct over manually managed memory rather than a class: the class's stored properties drew
/// dynamic exclusivity checks on every `add` (a fifth of query time in perf). Its owner calls
/// `deallocate()` once (`BM25.withScoreTable` does); copies share the memory.
///
/// Invariant (hashed): at most half the slots are filled, so a probe always ends at an empty slot.
/// Thread safety: none; one table per query.
struct ScoreTable {
    private var ids: UnsafeMutablePointer<Int64>
    private var sums: UnsafeMutablePointer<Double>
    private var filled: UnsafeMutablePointer<Bool>
    /// The filled slots in the order they were filled (`count` of them), so that reading the sums
    /// visits no empty slot.
    private var order: UnsafeMutablePointer<Int32>
    private var capacity: Int
    /// Direct layout: the id of slot 0; nil when hashed.
    private var first: Int64?
    private var shift: UInt64 = 0
    /// The documents with a sum.
    private(set) var count = 0

    /// A hashed table for about `expected` documents.
    init(expected: Int) {
        capacity = 0
        ids = .allocate(capacity: 1)
        sums = .allocate(capacity: 1)
        filled = .allocate(capacity: 1)
        order = .allocate(capacity: 1)
        allocate(hashedFor: expected)
    }

    /// A direct table for the ids `first..<first + span` (`span` >= 1).
    init(first: Int64, span: Int) {
        self.first = first
        capacity = span
        ids = .allocate(capacity: span)
        sums = .allocate(capacity: span)
        filled = .allocate(capacity: span)
        filled.initialize(repeating: false, count: span)
        order = .allocate(capacity: span)
    }

    func deallocate() {
        ids.deallocate()
        sums.deallocate()
        filled.deallocate()
        order.deallocate()
    }

    /// Replaces the storage with an empty hashed table for `expected` documents.
    private mutating func allocate(hashedFor expected: Int) {
        deallocate()
        var size = 16, bits: UInt64 = 4
        while size < 2 * expected {
            size <<= 1
            bits += 1
        }
        capacity = size
        shift = 64 - bits
        first = nil
        ids = .allocate(capacity: size)
        sums = .allocate(capacity: size)
        filled = .allocate(capacity: size)
        filled.initialize(repeating: false, count: size)
        order = .allocate(capacity: size / 2)
    }

    @inline(__always)
    private func slot(_ id: Int64) -> Int {
        Int(truncatingIfNeeded: (UInt64(bitPattern: id) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// Adds `x` to document `id`'s sum (a new document's sum is 0 + x).
    @inline(__always)
    mutating func add(_ id: Int64, _ x: Double) {
        if let first {
            let (offset, overflow) = id.subtractingReportingOverflow(first)
            if !overflow && offset >= 0 && offset < Int64(capacity) {
                let i = Int(offset)
                if filled[i] {
                    sums[i] += x
                } else {
                    fill(i, id, x)
                }
                return
            }
            rehash(expected: count + 1)
        }
        let mask = capacity - 1
        var i = slot(id)
        while filled[i] {
            if ids[i] == id {
                sums[i] += x
                return
            }
            i = (i + 1) & mask
        }
        if 2 * (count + 1) > capacity {
            rehash(expected: capacity)
            add(id, x)
            return
        }
        fill(i, id, x)
    }

    @inline(__always)
    private mutating func fill(_ i: Int, _ id: Int64, _ x: Double) {
        filled[i] = true
        ids[i] = id
        sums[i] = 0 + x
        order[count] = Int32(truncatingIfNeeded: i)
        count += 1
    }

    /// Calls `body` with every document and its sum, in no particular order.
    @inline(__always)
    func forEach(_ body: (Int64, Double) -> Void) {
        for j in 0..<count {
            let i = Int(order[j])
            body(ids[i], sums[i])
        }
    }

    /// Moves every sum into a new hashed table for `expected` documents (at least `count`).
    private mutating func rehash(expected: Int) {
        let old = self
        let oldCount = count
        ids = .allocate(capacity: 1)
        sums = .allocate(capacity: 1)
        filled = .allocate(capacity: 1)
        order = .allocate(capacity: 1)
        allocate(hashedFor: max(expected, oldCount))
        count = 0
        let mask = capacity - 1
        for n in 0..<oldCount {
            let j = Int(old.order[n])
            var i = slot(old.ids[j])
            while filled[i] { i = (i + 1) & mask }
            filled[i] = true
            ids[i] = old.ids[j]
            sums[i] = old.sums[j]
            order[count] = Int32(truncatingIfNeeded: i)
            count += 1
        }
        old.deallocate()
    }
}
