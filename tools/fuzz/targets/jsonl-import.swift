// Fuzz target jsonl-import. JSON Lines import: every row of the input as a .jsonl file, through JSONLSource and the log encoding of each document.
let fuzzTargetName = "jsonl-import"
