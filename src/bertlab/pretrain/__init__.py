"""Further pre-training: masked-language-model training on task or domain text before fine-tuning.

corpus.py (which text, never validation or test text), masking.py (blocks and masks), mlm_data.py
(the stage's training and held-out batches).
"""
