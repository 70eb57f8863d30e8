"""BitFit (Ben Zaken et al., ACL 2022): only the bias terms train, and the task head.

Ours, not peft's: peft has no BitFit (LoRA's `bias="all"` trains the biases beside LoRA's matrices,
never alone; its BEFT trains the value projections' biases only). It adds nothing to the model,
so it is one flag per parameter. As the paper's code (benzakenelad/BitFit, `BIAS_TERMS_DICT['all']`:
every parameter whose name holds `bias`, and the classifier): every bias of the model trains, those
of the embeddings' and the blocks' LayerNorms and of the pooler included; every weight is frozen.
"""

from torch import nn


def is_bias(name: str) -> bool:
    return name.rsplit(".", 1)[-1] == "bias"


def apply_bitfit(model: nn.Module, head: list[str]) -> None:
    """Freeze every parameter but the biases and those of the `head` modules (names in `model`)."""
    for name, p in model.named_parameters():
        p.requires_grad_(is_bias(name) or any(name.startswith(h + ".") for h in head))
