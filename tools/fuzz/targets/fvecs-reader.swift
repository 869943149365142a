// Fuzz target fvecs-reader. Bare vectors: the input read as .fvecs and as .bvecs through VecsSource.
let fuzzTargetName = "fvecs-reader"
