// The Quiver module; see docs/architecture.md.
