import Foundation
import QuiverStorage

/// A memory-mapped, validated `.safetensors` file.
///
/// Format (https://github.com/huggingface/safetensors), all little-endian:
/// ```
/// u64 N                      length of the JSON header
/// N bytes                    UTF-8 JSON: { "name": {"dtype": "F32", "shape": [r, c],
///                                          "data_offsets": [begin, end]}, ...,
///                              "__metadata__": {string: string} (optional) }
/// data                       tensor bytes; offsets are relative to the start of this block
/// ```
/// Validity rules enforced at open, so that no later read can leave the mapping:
/// - the file holds at least the 8-byte length, and `N <= maxHeaderLength` and `8 + N <= file size`;
/// - the header is a JSON object whose entries each have a known dtype, a shape of non-negative
///   integers and `0 <= begin <= end <= data size`;
/// - `product(shape) * size(dtype) == end - begin` (with overflow checks);
/// - no two tensors' byte ranges overlap.
///
/// Thread safety: immutable after `init`; any number of threads may read tensors at once.
/// The mapping is read-only and lives until the object is released.
public final class SafetensorsFile: @unchecked Sendable {
    /// Element types a safetensors header may name. Only the floating types convert to float32.
    public enum DType: String, Sendable, CaseIterable {
        case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"
        case u16 = "U16", u32 = "U32", u64 = "U64", f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .f64, .i64, .u64: return 8
            case .f32, .i32, .u32: return 4
            case .f16, .bf16, .i16, .u16: return 2
            case .i8, .u8, .bool, .f8e4m3, .f8e5m2: return 1
            }
        }
    }

    /// One tensor's header entry.
    public struct TensorInfo: Sendable, Equatable {
        /// The tensor's name in the header.
        public let name: String
        /// Its element type.
        public let dtype: DType
        /// Its shape, outermost dimension first (row-major).
        public let shape: [Int]
        /// Byte range inside the data block.
        public let dataRange: Range<Int>
        /// Number of elements (`product(shape)`, 1 for a scalar).
        public var count: Int { shape.reduce(1, *) }
    }

    /// A bound on the JSON header's length: the reference implementation refuses headers over
    /// 100 MB, and a corrupt length must not make us allocate gigabytes.
    public static let maxHeaderLength = 100_000_000

    /// The file's path, for error messages.
    public let path: String
    /// Every tensor, by name.
    public let tensors: [String: TensorInfo]
    /// The optional `__metadata__` string map.
    public let metadata: [String: String]
    /// Total file size in bytes.
    public let fileSize: Int

    /// The mapping (through the file layer); every tensor read stays inside it.
    private let mapped: MappedFile
    private var base: UnsafeRawPointer { mapped.bytes.baseAddress! }
    private let dataOffset: Int

    /// Maps and validates the file at `path`.
    public init(path: String) throws {
        self.path = path
        do {
            mapped = try MappedFile(path: path)
        } catch let e as StorageError {
            throw EncoderError(.io, "cannot map safetensors file: \(e.message)", path: path)
        }
        let size = mapped.bytes.count
        guard size >= 8 else {
            throw EncoderError(.invalidSafetensors, "file of \(size) bytes is shorter than the 8-byte header length", path: path)
        }
        let parsed = try Self.parseHeader(base: mapped.bytes.baseAddress!, fileSize: size, path: path)
        self.tensors = parsed.tensors
        self.metadata = parsed.metadata
        self.dataOffset = parsed.dataOffset
        self.fileSize = size
    }

    /// The whole file's bytes, valid while `self` lives (used to fingerprint the weights).
    public func withFileBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(mapped.bytes)
    }

    /// The tensor `name` converted to float32, row-major, checked against `shape` when given.
    public func floats(_ name: String, shape expected: [Int]? = nil) throws -> [Float] {
        guard let info = tensors[name] else {
            throw EncoderError(.missingTensor, "no tensor named '\(name)'", path: path)
        }
        if let expected, expected != info.shape {
            throw EncoderError(.missingTensor, "tensor '\(name)' has shape \(info.shape), expected \(expected)", path: path)
        }
        let n = info.count
        let src = base + dataOffset + info.dataRange.lowerBound
        var out = [Float](repeating: 0, count: n)
        // Offsets need not be aligned to the element size, so every load is unaligned.
        out.withUnsafeMutableBufferPointer { dst in
            switch info.dtype {
            case .f32:
                if n > 0 { memcpy(dst.baseAddress!, src, n * 4) }
            case .f16:
                for i in 0..<n { dst[i] = Float(Float16(bitPattern: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            case .bf16:
                for i in 0..<n { dst[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
            case .f64:
                for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
            default:
                break
            }
        }
        switch info.dtype {
        case .f32, .f16, .bf16, .f64: return out
        default:
            throw EncoderError(.unsupportedDType, "tensor '\(name)' has dtype \(info.dtype.rawValue), which does not convert to float32", path: path)
        }
    }

    private struct Parsed {
        var tensors: [String: TensorInfo]
        var metadata: [String: String]
        var dataOffset: Int
    }

    private static func parseHeader(base: UnsafeRawPointer, fileSize: Int, path: String) throws -> Parsed {
        func invalid(_ message: String) -> EncoderError { EncoderError(.invalidSafetensors, message, path: path) }

        let declared = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        guard declared <= UInt64(maxHeaderLength) else {
            throw invalid("header length \(declared) exceeds the limit of \(maxHeaderLength) bytes")
        }
        let headerLength = Int(declared)
        guard 8 + headerLength <= fileSize else {
            throw invalid("header length \(headerLength) runs past the end of the \(fileSize)-byte file")
        }
        let headerBytes = Data(bytes: base + 8, count: headerLength)
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw invalid("header does not start with '{'")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerBytes)
        } catch {
            throw invalid("header is not valid JSON: \(error.localizedDescription)")
        }
        guard let object = json as? [String: Any] else { throw invalid("header is not a JSON object") }

        let dataSize = fileSize - 8 - headerLength
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else { throw invalid("__metadata__ is not an object") }
                for (k, v) in map {
                    guard let s = v as? String else { throw invalid("__metadata__ value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any] else { throw invalid("entry '\(name)' is not an object") }
            guard let dtypeName = entry["dtype"] as? String else { throw invalid("tensor '\(name)' has no dtype") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw invalid("tensor '\(name)' has unknown dtype '\(dtypeName)'")
            }
            guard let shapeValues = entry["shape"] as? [Any] else { throw invalid("tensor '\(name)' has no shape") }
            var shape: [Int] = []
            for d in shapeValues {
                guard let dim = integer(d), dim >= 0 else { throw invalid("tensor '\(name)' has a bad shape \(shapeValues)") }
                shape.append(dim)
            }
            guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
                  let begin = integer(offsets[0]), let end = integer(offsets[1]) else {
                throw invalid("tensor '\(name)' has no valid data_offsets")
            }
            guard 0 <= begin, begin <= end, end <= dataSize else {
                throw invalid("tensor '\(name)' has data_offsets [\(begin), \(end)] outside the \(dataSize)-byte data block")
            }
            var bytes = dtype.size
            for dim in shape {
                let (product, overflow) = bytes.multipliedReportingOverflow(by: dim)
                guard !overflow else { throw invalid("tensor '\(name)' shape \(shape) overflows") }
                bytes = product
            }
            guard bytes == end - begin else {
                throw invalid("tensor '\(name)' of shape \(shape) and dtype \(dtypeName) needs \(bytes) bytes but data_offsets span \(end - begin)")
            }
            tensors[name] = TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
        }

        let ordered = tensors.values.sorted { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.dataRange.overlaps(b.dataRange) {
            throw invalid("tensors '\(a.name)' \(a.dataRange) and '\(b.name)' \(b.dataRange) overlap")
        }
        return Parsed(tensors: tensors, metadata: metadata, dataOffset: 8 + headerLength)
    }

    // JSONSerialization yields NSNumber for numbers; accept only numbers that are exact integers.
    private static func integer(_ value: Any) -> Int? {
        guard let n = value as? NSNumber else { return nil }
        let d = n.doubleValue
        guard d == d.rounded(), abs(d) < 9.0e15 else { return nil }
        return Int(exactly: d)
    }
}
