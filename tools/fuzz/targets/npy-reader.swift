// Fuzz target npy-reader. NumPy .npy vectors: header (versions 1 to 3, descr, shape) and rows through NPYSource.
let fuzzTargetName = "npy-reader"
