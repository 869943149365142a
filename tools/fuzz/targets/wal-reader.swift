// Fuzz target wal-reader. Write-ahead log: input with the WAL magic is a log file opened (recovered) and replayed; other input is one log record (type byte, payload) decoded as a Quiver LogRecord.
let fuzzTargetName = "wal-reader"
