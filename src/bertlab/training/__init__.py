"""The LightningModule: one training, validation and test step, and the task metrics."""
