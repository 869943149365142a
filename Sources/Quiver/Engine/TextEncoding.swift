import QuiverCore
import QuiverEncoder

extension Database {
    /// The encoder a collection was created with, checked against what the catalog recorded: a
    /// different model (identifier, dimension or weights) is an error, never silent garbage.
    func encoder(for info: CollectionInfo) throws -> any TextEncoder {
        guard let binding = info.encoder else {
            throw QuiverError.encoder("collection '\(info.name)' has no text encoder; give vectors, or create the collection with an encoder")
        }
        let encoder: any TextEncoder
        do {
            encoder = try options.encoders.encoder(named: binding.name)
        } catch let e as EncoderError {
            throw QuiverError.encoder("collection '\(info.name)' needs encoder '\(binding.name)': \(e.message)")
        }
        if encoder.identifier != binding.identifier || encoder.dimension != binding.dimension || encoder.weightsChecksum != binding.weightsChecksum {
            throw QuiverError.encoder("""
                collection '\(info.name)' was built with encoder '\(binding.name)' (\(binding.identifier), \(binding.dimension)-d, weights \(binding.weightsChecksum.prefix(16))), \
                but the installed one is \(encoder.identifier), \(encoder.dimension)-d, weights \(encoder.weightsChecksum.prefix(16)); \
                reinstall the original model or re-embed into a new collection
                """)
        }
        return encoder
    }

    /// Resolves an encoder by name for a new collection.
    func binding(forEncoder name: String) throws -> (EncoderBinding, any TextEncoder) {
        do {
            let e = try options.encoders.encoder(named: name)
            return (EncoderBinding(name: name, identifier: e.identifier, dimension: e.dimension, weightsChecksum: e.weightsChecksum), e)
        } catch let e as EncoderError {
            throw QuiverError.encoder("cannot use encoder '\(name)': \(e.message)")
        }
    }
}

/// Runs an encoder, turning its errors into `QuiverError.encoder`.
func encode(_ texts: [String], with encoder: any TextEncoder, queries: Bool) throws -> Matrix {
    do {
        return queries ? try encoder.encode(queries: texts) : try encoder.encode(documents: texts)
    } catch let e as EncoderError {
        throw QuiverError.encoder("the text encoder failed: \(e.message)")
    }
}
