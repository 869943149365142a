// Fuzz target tokenizer. WordPiece tokenizer: the input as UTF-8 text, encoded at three maximum lengths; ids must be framed by [CLS] and [SEP]. Needs QUIVER_FUZZ_VOCAB.
let fuzzTargetName = "tokenizer"
