"""Lightning callbacks around training: best-weight selection, diagnostics, throughput and resume checkpoints."""
