// Fuzz target segment-ivfpq. IVF-PQ segment files: IVFPQCodec.decode as is, then with the header checksum fixed up, and a search of what decodes.
let fuzzTargetName = "segment-ivfpq"
