/// A family of C kernel variants chosen at run time (CQuiverKernels' cpu_features.h), as a Swift enum:
/// cases declared narrowest first, in the order of the C enum, so a case's position is its C value,
/// and raw values that are the names the family's environment variable takes.
public protocol KernelVariant: RawRepresentable, CaseIterable, Hashable, Sendable
where RawValue == String, AllCases == [Self] {
    /// The environment variable that forces a variant.
    static var environmentVariable: String { get }
    /// Whether this CPU runs the variant.
    var isSupported: Bool { get }
}

extension KernelVariant {
    /// The variant's value in the C enum.
    package var cValue: UInt32 { UInt32(Self.allCases.firstIndex(of: self)!) }

    /// The variant of a C enum value (an unknown value: the narrowest).
    package init(cValue: UInt32) {
        let all = Self.allCases
        self = Int(cValue) < all.count ? all[Int(cValue)] : all[0]
    }

    /// The names of the variants this CPU runs, comma-separated (for messages).
    public static var supportedNames: String { allCases.filter(\.isSupported).map(\.rawValue).joined(separator: ", ") }
}
