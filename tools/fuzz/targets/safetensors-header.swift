// Fuzz target safetensors-header. safetensors files: SafetensorsFile(path:) parses the header; every listed tensor is read.
let fuzzTargetName = "safetensors-header"
