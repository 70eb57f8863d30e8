"""`python -m scripts.gpu_check --smoke`: every code path of the GPU check on the CPU (the GPU
figures themselves need a GPU), and its peak table."""

import json
import subprocess
import sys

import pytest

from scripts.gpu_check import PEAK_BF16_TFLOPS, TABLE_ROW, peak_tflops
from tests.helpers.e2e import REPO, train_env


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0),  # SXM5
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H100 NVL", 835.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L40S", 362.0),
        ("NVIDIA L4", 121.0),
        ("Tesla T4", None),  # not in the table: no MFU rather than a wrong one
    ],
)
def test_peak_of_the_card(name, peak):
    assert peak_tflops(name) == peak


def test_the_table_lists_specific_names_before_the_names_they_contain():
    names = list(PEAK_BF16_TFLOPS)
    for i, name in enumerate(names):
        assert not any(name in later for later in names[i + 1 :]), f"{name} would shadow a later, longer name"


def test_the_sweep_table_row_is_read():
    assert TABLE_ROW.match("| 4 | 123 | 7.7 |").groups() == ("4", "123", "7.7")


@pytest.mark.long
@pytest.mark.slow
def test_smoke_runs_every_path_on_the_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.gpu_check", "--smoke", "--out", str(out)],
        cwd=REPO,
        env=train_env(),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    f = res["fine_tuning"]
    assert f["steps"] == 2 and f["samples_per_s"] > 0 and f["model_tflops_per_s"] is not None  # rounded: ~0 here
    assert f["mfu"] is None and f["peak_memory_gib"] is None  # the CPU: no peak, no GPU memory
    assert [r["jobs_per_gpu"] for r in res["jobs_per_gpu"]["rows"]] == [1, 2]
    assert all(r["wall_s"] > 0 for r in res["jobs_per_gpu"]["rows"])
    assert "| jobs_per_gpu | wall time (s) | s per job |" in proc.stdout
