"""Training throughput: samples per second spent in training batches (validation excluded).

Lightning's ThroughputMonitor reports windowed rates to a logger; a run's result needs one
whole-run figure, which this measures from the batch hooks.
"""

import time

import lightning as L


class TrainThroughput(L.Callback):
    def __init__(self):
        self.samples = 0
        self.seconds = 0.0
        self._start: float | None = None

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self.samples += int(batch["input_ids"].shape[0])
            self._start = None

    @property
    def samples_per_s(self) -> float | None:
        return round(self.samples / self.seconds, 3) if self.seconds else None
