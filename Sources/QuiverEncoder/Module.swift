// The QuiverEncoder module; see docs/architecture.md.
