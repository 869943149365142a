import Foundation
import Testing
@testable import QuiverEncoder

/// The safetensors reader against hand-made files, valid and broken.
struct SafetensorsTests {
    /// Writes `u64 header length + header + data` and returns the path.
    static func write(header: String, data: [UInt8], declaredLength: UInt64? = nil, in dir: URL, name: String = "t.safetensors") throws -> String {
        var bytes: [UInt8] = []
        let h = Array(header.utf8)
        let n = declaredLength ?? UInt64(h.count)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: n >> (UInt64(i) * 8))) }
        bytes += h + data
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    static func floatBytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (UInt32($0) * 8)) } }
    }

    static func halfBytes(_ values: [Float16]) -> [UInt8] {
        values.flatMap { v in [UInt8(truncatingIfNeeded: v.bitPattern), UInt8(truncatingIfNeeded: v.bitPattern >> 8)] }
    }

    /// Expects opening (and, when `tensor` is given, reading) to fail with `code`, and the message to mention `mentioning`.
    static func expectFailure(_ code: EncoderError.Code, mentioning: String, header: String, data: [UInt8] = [],
                              declaredLength: UInt64? = nil, tensor: String? = nil, shape: [Int]? = nil,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try write(header: header, data: data, declaredLength: declaredLength, in: dir)
        do {
            let file = try SafetensorsFile(path: path)
            if let tensor { _ = try file.floats(tensor, shape: shape) }
            Issue.record("expected \(code) error", sourceLocation: sourceLocation)
        } catch let error as EncoderError {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains(mentioning), "\(error)", sourceLocation: sourceLocation)
            #expect(error.path == path, sourceLocation: sourceLocation)
        }
    }

    @Test func readsF32AndF16Tensors() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let f32: [Float] = [1, -2.5, 3.25, 0, 1e-3, 7]
        let f16: [Float16] = [1.5, -2, 0.000061035156, 65504]
        let header = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F16","shape":[4],"data_offsets":[24,32]},"s":{"dtype":"F32","shape":[],"data_offsets":[32,36]}}"#
        let path = try Self.write(header: header, data: Self.floatBytes(f32) + Self.halfBytes(f16) + Self.floatBytes([42]), in: dir)
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == ["format": "pt"])
        #expect(file.tensors["a"]?.shape == [2, 3])
        #expect(try file.floats("a", shape: [2, 3]) == f32)
        #expect(try file.floats("b") == f16.map { Float($0) })
        #expect(try file.floats("s") == [42])
    }

    @Test func unalignedDataOffsetsAreRead() throws {
        // A header of odd length puts the data block at an odd file offset.
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try Self.write(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} "#, data: Self.floatBytes([1.25, -3]), in: dir)
        #expect(try SafetensorsFile(path: path).floats("a") == [1.25, -3])
    }

    @Test func missingFileIsAnIOError() {
        #expect { try SafetensorsFile(path: "/nonexistent/model.safetensors") } throws: { ($0 as? EncoderError)?.code == .io }
    }

    @Test func fileShorterThanTheLengthPrefix() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("short.safetensors")
        try Data([1, 2, 3]).write(to: url)
        #expect { try SafetensorsFile(path: url.path) } throws: { ($0 as? EncoderError)?.code == .invalidSafetensors }
    }

    @Test func headerLengthPastEndOfFile() throws {
        try Self.expectFailure(.invalidSafetensors, mentioning: "past the end", header: "{}", declaredLength: 1000)
    }

    @Test func headerLengthOverTheBound() throws {
        try Self.expectFailure(.invalidSafetensors, mentioning: "exceeds", header: "{}", declaredLength: UInt64(SafetensorsFile.maxHeaderLength) + 1)
    }

    @Test func headerThatIsNotJSON() throws {
        try Self.expectFailure(.invalidSafetensors, mentioning: "not valid JSON", header: "{not json")
        try Self.expectFailure(.invalidSafetensors, mentioning: "start with", header: "[1, 2]")
    }

    @Test func offsetsOutsideTheData() throws {
        try Self.expectFailure(.invalidSafetensors, mentioning: "outside", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0])
        try Self.expectFailure(.invalidSafetensors, mentioning: "outside", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: [UInt8](repeating: 0, count: 8))
    }

    @Test func shapeTimesDtypeMustEqualByteLength() throws {
        try Self.expectFailure(.invalidSafetensors, mentioning: "needs 12 bytes", header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))
        try Self.expectFailure(.invalidSafetensors, mentioning: "needs 4 bytes", header: #"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))
    }

    @Test func overlappingTensors() throws {
        try Self.expectFailure(.invalidSafetensors, mentioning: "overlap", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: [UInt8](repeating: 0, count: 12))
    }

    @Test func unknownDtypeAndBadShape() throws {
        try Self.expectFailure(.invalidSafetensors, mentioning: "unknown dtype", header: #"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#, data: [0])
        try Self.expectFailure(.invalidSafetensors, mentioning: "bad shape", header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        try Self.expectFailure(.invalidSafetensors, mentioning: "data_offsets", header: #"{"a":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0])
    }

    @Test func missingTensorWrongShapeAndIntegerDtype() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"i":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}"#
        let data = [UInt8](repeating: 0, count: 16)
        try Self.expectFailure(.missingTensor, mentioning: "no tensor named 'b'", header: header, data: data, tensor: "b")
        try Self.expectFailure(.missingTensor, mentioning: "expected [3]", header: header, data: data, tensor: "a", shape: [3])
        try Self.expectFailure(.unsupportedDType, mentioning: "I64", header: header, data: data, tensor: "i")
    }

    @Test func installedModelHeaderIsValid() throws {
        let encoder = try TestSupport.miniLM.get()
        let file = try SafetensorsFile(path: encoder.folder.weightsPath)
        #expect(file.tensors["embeddings.word_embeddings.weight"]?.shape == [30522, 384])
        #expect(file.tensors["embeddings.position_ids"]?.dtype == .i64)
    }
}

struct SHA256Tests {
    @Test func fipsVectors() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func incrementalEqualsWhole() {
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = SHA256.hex(data)
        for split in [0, 1, 55, 56, 63, 64, 65, 500, 1000] {
            var h = SHA256()
            data[..<split].withUnsafeBytes { h.update($0) }
            data[split...].withUnsafeBytes { h.update($0) }
            #expect(h.finalizeHex() == whole, "split at \(split)")
        }
    }
}
