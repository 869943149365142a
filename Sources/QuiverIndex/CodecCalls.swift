import Synchronization

/// Counts the encodes and decodes of whole indexes (`HNSWCodec`, `IVFPQCodec`) made while it is
/// bound as `CodecCalls.current`: how a test shows which work a change of segments does (a merge
/// copies its largest segment in memory, so it encodes only the merged file and decodes only that
/// file's mapping back). Bound per task (`CodecCalls.$current.withValue`), so searches and writes of
/// other tests running at the same time are not counted. Safe from any thread.
public final class CodecCalls: Sendable {
    /// The counter the codecs report to; nil (the default) counts nothing.
    @TaskLocal public static var current: CodecCalls?

    private let encodeCount = Atomic<Int>(0)
    private let decodeCount = Atomic<Int>(0)

    public init() {}

    /// Indexes encoded (one per `encode` call, however many chunks it writes).
    public var encodes: Int { encodeCount.load(ordering: .relaxed) }
    /// Indexes decoded.
    public var decodes: Int { decodeCount.load(ordering: .relaxed) }

    static func encoded() { current?.encodeCount.add(1, ordering: .relaxed) }
    static func decoded() { current?.decodeCount.add(1, ordering: .relaxed) }
}
