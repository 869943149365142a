// Fuzz target segment-hnsw. HNSW segment files, float32 and sq8 (by magic): HNSWCodec.decode or SQ8HNSWCodec.decode as is, then with the header checksum fixed up (to reach the structural checks), and a search of what decodes.
let fuzzTargetName = "segment-hnsw"
