"""approach=prompt: prompt-based fine-tuning (PET, Schick & Schuetze 2021; LM-BFF, Gao et al. 2021).

template.py (the cloze template, the label words, truncation), model.py (the masked-LM model's
class scores at the mask, regression between two poles), demonstrations.py (LM-BFF's examples
appended per class), encoder.py (examples -> items), aux_mlm.py (PET's auxiliary masked-LM loss),
approach.py (what run/approach.py calls).
"""
