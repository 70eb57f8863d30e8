"""The LightningModule: one training, validation and test step, and the metrics shared by the problems (problems/<kind>/metrics.py holds a problem's own)."""
