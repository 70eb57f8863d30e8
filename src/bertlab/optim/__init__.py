"""Optimization: the Adam family (BERTAdam, AdamW, Adam+L2), parameter groups (decay, LLRD) and learning-rate schedules."""
