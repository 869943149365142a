import QuiverCore
import QuiverEncoder
import QuiverTuning

/// How vectors are compared: cosine (default), dot product or Euclidean (L2) distance.
public typealias Metric = QuiverCore.Metric

/// A row-major float32 matrix: what text encoders return.
public typealias Matrix = QuiverCore.Matrix

/// The text-encoder plugin seam: conform to it and register the encoder by name in an
/// `EncoderRegistry` to use it in collections.
public typealias TextEncoder = QuiverEncoder.TextEncoder

/// Encoders by name; the built-in `all-MiniLM-L6-v2` is always registered.
public typealias EncoderRegistry = QuiverEncoder.EncoderRegistry

/// Where sentence-transformers model folders are found (`$QUIVER_MODELS`, else
/// `~/.local/share/quiver/models`).
public typealias ModelStore = QuiverEncoder.ModelStore

/// Where the built-in encoder's model comes from (the PyPI wheel, the folder in it, its checksum).
public typealias BuiltInModel = QuiverEncoder.BuiltInModel

/// A query-side adapter of a collection's encoder (see `Collection.tune`).
public typealias QueryAdapter = QuiverTuning.QueryAdapter
/// How an adapter is trained (epochs, temperature, weight decay, hard negatives...).
public typealias TrainerConfiguration = QuiverTuning.TrainerConfiguration
/// One training epoch's figures.
public typealias EpochReport = QuiverTuning.EpochReport
