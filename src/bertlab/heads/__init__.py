"""Which layer the classifier reads, and how (the `head` config group): heads over the encoder's
hidden states (modules.py), the encoder + head model and its save / load (model.py), and the
config -> model step (build.py). `head=pooler`, the default, is the family's own HF head (model/load.py).

Above `optim/` (it picks a head class by `_target_` with core/target.py's helpers) and `model/`."""
