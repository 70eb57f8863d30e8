"""Foundations every other package uses: error types, where packaged files live, atomic file writes,
the network probe, and the result record (result.json) that runs write and sweeps and reports read."""
