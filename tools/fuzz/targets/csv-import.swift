// Fuzz target csv-import. CSV import: the input as a .csv file (header row, quoted fields, typed and inferred columns) through CSVSource.
let fuzzTargetName = "csv-import"
