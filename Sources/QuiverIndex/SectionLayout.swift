/// Where the sections of a segment file go, as both segment codecs (`HNSWCodec`, `IVFPQCodec`) lay
/// them out: after a fixed-size header, each section starts at the first multiple of 64 at or after
/// the end of the previous one (the padding is zero), and the file ends exactly at the end of the
/// last section. A decoder compares the section table it reads with this layout.
struct SectionLayout {
    var offsets: [Int]
    var lengths: [Int]
    /// The size of the whole file.
    var total: Int

    /// The layout of sections of `count x width` bytes each, in order; nil when a size or offset
    /// would overflow Int (the caller treats that input as corrupt).
    init?(headerSize: Int, sections: [(count: Int, width: Int)]) {
        offsets = []
        lengths = []
        var at = headerSize
        for (i, s) in sections.enumerated() {
            let (length, o1) = s.count.multipliedReportingOverflow(by: s.width)
            let (end, o2) = at.addingReportingOverflow(length)
            if o1 || o2 || end > Int.max - 64 { return nil }
            offsets.append(at)
            lengths.append(length)
            at = i == sections.count - 1 ? end : (end + 63) & ~63
        }
        total = at
    }
}
