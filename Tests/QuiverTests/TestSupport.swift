import QuiverCore

extension SplitMix64 {
    /// The tests' older spelling of `init(seed:)`.
    init(state: UInt64) { self.init(seed: state) }
}
