"""Foundations every other package uses: error types, where packaged files live, atomic file writes and the network probe."""
