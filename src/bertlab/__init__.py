"""bertlab: a Hydra + PyTorch Lightning template for few-sample BERT fine-tuning."""

__version__ = "0.1.0"
