"""Training throughput: samples per second spent in training batches (validation excluded).

Lightning's ThroughputMonitor reports windowed rates to a logger; a run's result needs one
whole-run figure, which this measures from the batch hooks. It also counts real (attention mask)
and processed (padded) tokens, i.e. the padding efficiency of the training batches, and the
start-up time: seconds from the process start (the command) to the first training batch.

Model FLOPs: the usual estimate for a transformer encoder, per sequence of S processed tokens,
6·N·S + 12·L·H·S² (N = non-embedding parameters, L layers, hidden size H: forward + backward of
the matmuls and of attention), over the time of the training batches; divided by the device's
peak from Lightning's `get_available_flops` (known GPUs and dtypes) it is the model FLOPs
utilisation (MFU). Lightning's ThroughputMonitor wants a fixed `flops_per_batch`, which dynamic
padding does not have, hence this per-batch count.
"""

import os
import time

import lightning as L
import torch
from lightning.fabric.utilities.throughput import get_available_flops

_IMPORTED_AT = time.time()


def process_start_time() -> float:
    """Unix time at which this process started: Linux /proc to ~10 ms; else psutil when installed;
    else the time this module was imported, which misses only the interpreter's own start-up.

    Not psutil first: on Linux it adds the start ticks to /proc/stat's `btime`, the boot time in
    whole seconds, so its start time is early by the boot's fraction of a second (0.68 s on the
    machine that measured the start-up in docs/results.md). /proc/uptime has 10 ms resolution instead."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        now = time.time()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return now - uptime + start_ticks / ticks
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return psutil.Process().create_time()
    except ImportError:
        return _IMPORTED_AT


class TrainThroughput(L.Callback):
    def __init__(self):
        self.samples = 0
        self.seconds = 0.0
        self._start: float | None = None
        self.real_tokens = 0
        self.processed_tokens = 0
        self.first_step_at: float | None = None  # unix time of the first training batch
        self.flops = 0.0
        self._flop_terms: tuple[int, int] | None = None  # (6 N, 12 L H)
        self.peak_flops: int | None = None

    def on_fit_start(self, trainer, module):
        model = getattr(module, "model", module)
        config = getattr(model, "config", None)
        n = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
        layers, hidden = getattr(config, "num_hidden_layers", 0), getattr(config, "hidden_size", 0)
        self._flop_terms = (6 * n, 12 * layers * hidden)
        precision = str(trainer.precision)
        dtype = torch.bfloat16 if "bf16" in precision else torch.float16 if "16" in precision else torch.float32
        try:
            self.peak_flops = get_available_flops(trainer.strategy.root_device, dtype)
        except Exception:  # unknown device: no MFU, the achieved FLOP/s are still recorded
            self.peak_flops = None

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.first_step_at is None:
            self.first_step_at = time.time()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self.samples += int(batch["input_ids"].shape[0])
            self._start = None
            mask = batch.get("attention_mask")
            if mask is not None:
                self.real_tokens += int(mask.sum())
                self.processed_tokens += mask.numel()
                if self._flop_terms is not None:
                    # sequences x length; multiple choice: (batch, choices, length), batch x choices sequences
                    seq = mask.shape[-1]
                    sequences = mask.numel() // seq
                    self.flops += sequences * (self._flop_terms[0] * seq + self._flop_terms[1] * seq * seq)

    @property
    def samples_per_s(self) -> float | None:
        return round(self.samples / self.seconds, 3) if self.seconds else None

    @property
    def padding_efficiency(self) -> float | None:
        """Real tokens / processed tokens of the training batches."""
        return round(self.real_tokens / self.processed_tokens, 4) if self.processed_tokens else None

    @property
    def model_tflops_per_s(self) -> float | None:
        return round(self.flops / self.seconds / 1e12, 4) if self.seconds and self.flops else None

    @property
    def mfu(self) -> float | None:
        """Model FLOPs utilisation; None where Lightning knows no peak for the device (CPUs)."""
        return round(self.flops / self.seconds / self.peak_flops, 4) if self.seconds and self.peak_flops else None

    @property
    def startup_s(self) -> float | None:
        """Seconds from the process start to the first training batch."""
        return round(self.first_step_at - process_start_time(), 3) if self.first_step_at else None
