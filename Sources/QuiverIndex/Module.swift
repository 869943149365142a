// The QuiverIndex module; see docs/architecture.md.
