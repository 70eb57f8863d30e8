"""From files to batches: task readers, the paper's splits, tokenisation with its cache, length grouping and resumable loading."""
