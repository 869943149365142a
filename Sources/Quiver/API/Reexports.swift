import QuiverCore

/// How vectors are compared: cosine (default), dot product or Euclidean (L2) distance.
public typealias Metric = QuiverCore.Metric
