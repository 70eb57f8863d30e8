"""Further pre-training: masked-language-model training on task or domain text before fine-tuning.

corpus.py (which text, never validation or test text), masking.py (blocks and masks, Google's
whole-word masking), nsp_data.py (next-sentence pairs, objective=mlm_nsp), selective.py (selective
masking's scorer, importance labels and token classifier), mlm_data.py (the stage's training and
held-out batches), snapshots.py (saved steps, use_step), settings.py (the keys' rules, per-stage
settings), stage.py (one stage, cached by cache.py).
"""
