// The QuiverStorage module; see docs/architecture.md.
