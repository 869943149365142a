/// The running BM25 sums of one query, by document id: an open-addressing hash table (linear
/// probing, Fibonacci hashing) that starts large enough for the sum of the query terms' document
/// frequencies (which bounds the documents that can score) and doubles if a source's figures
/// understate it. It replaces a `[Int64: Double]`, whose SipHash hashing and rehashing as it
/// grew were a third of a query's time in BM25Bench (perf, SciFact).
///
/// A struct over manually managed memory rather than a class: the class's stored properties drew
/// dynamic exclusivity checks on every `add` (a fifth of query time in perf). Its owner calls
/// `deallocate()` once (`BM25.withScoreTable` does); copies share the memory.
///
/// Invariant: at most half the slots are filled, so a probe always ends at an empty slot.
/// Thread safety: none; one table per query.
struct ScoreTable {
    private var ids: UnsafeMutablePointer<Int64>
    private var sums: UnsafeMutablePointer<Double>
    private var filled: UnsafeMutablePointer<Bool>
    /// The filled slots in the order they were filled (`count` of them), so that reading the sums
    /// visits no empty slot.
    private var order: UnsafeMutablePointer<Int32>
    private var capacity: Int
    private var shift: UInt64
    /// The documents with a sum.
    private(set) var count = 0

    /// A table for about `expected` documents.
    init(expected: Int) {
        var capacity = 16, bits: UInt64 = 4
        while capacity < 2 * expected {
            capacity <<= 1
            bits += 1
        }
        self.capacity = capacity
        shift = 64 - bits
        ids = .allocate(capacity: capacity)
        sums = .allocate(capacity: capacity)
        filled = .allocate(capacity: capacity)
        filled.initialize(repeating: false, count: capacity)
        order = .allocate(capacity: capacity / 2)
    }

    func deallocate() {
        ids.deallocate()
        sums.deallocate()
        filled.deallocate()
        order.deallocate()
    }

    @inline(__always)
    private func slot(_ id: Int64) -> Int {
        Int(truncatingIfNeeded: (UInt64(bitPattern: id) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// Adds `x` to document `id`'s sum (a new document's sum is 0 + x).
    @inline(__always)
    mutating func add(_ id: Int64, _ x: Double) {
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
            grow()
            add(id, x)
            return
        }
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

    private mutating func grow() {
        let (oldIDs, oldSums, oldFilled, oldOrder) = (ids, sums, filled, order)
        capacity *= 2
        shift -= 1
        ids = .allocate(capacity: capacity)
        sums = .allocate(capacity: capacity)
        filled = .allocate(capacity: capacity)
        filled.initialize(repeating: false, count: capacity)
        order = .allocate(capacity: capacity / 2)
        let mask = capacity - 1
        for n in 0..<count {
            let j = Int(oldOrder[n])
            var i = slot(oldIDs[j])
            while filled[i] { i = (i + 1) & mask }
            filled[i] = true
            ids[i] = oldIDs[j]
            sums[i] = oldSums[j]
            order[n] = Int32(truncatingIfNeeded: i)
        }
        oldIDs.deallocate()
        oldSums.deallocate()
        oldFilled.deallocate()
        oldOrder.deallocate()
    }
}
