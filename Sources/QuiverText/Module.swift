// The QuiverText module; see docs/architecture.md.
