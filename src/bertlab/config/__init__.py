"""Config validation, in one layer: unknown keys refused before composing, then every value's rule checked before any heavy work."""
