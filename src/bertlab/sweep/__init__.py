"""Sweep bookkeeping: one job per folder, skipping finished jobs, and the end-of-sweep summary."""
