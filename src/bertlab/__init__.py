"""bertlab: a Hydra + PyTorch Lightning template for few-sample BERT fine-tuning.

From Python (a notebook, a script, a test):

    import bertlab
    record = bertlab.train(["task=rte", "optimizer=bertadam", "seed=1"])   # = python train.py ...
    bertlab.predict(record["run_dir"], ["a text"])                         # needs save_weights=true

Both are imported on first use: `import bertlab` stays light (the command line's key check runs
before torch and Lightning are imported).
"""

from importlib import metadata

try:
    __version__ = metadata.version("bertlab")
except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

__all__ = ["__version__", "predict", "train"]


def train(overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """One run of `python train.py <overrides>` in this process; returns its result record
    (bertlab/run/inprocess.py)."""
    from bertlab.run.inprocess import train as train_in_process

    return train_in_process(overrides)


def predict(run_dir, texts) -> list[dict]:
    """A saved run's predictions for `texts`, the records `bertlab predict` writes
    (bertlab/run/predict.py `predict_texts`)."""
    from pathlib import Path

    from bertlab.run.predict import predict_texts

    return predict_texts(Path(run_dir), texts)
