"""The recipes of docs/extending.md, done as a fork does them: from a folder outside the package
(its own config folder on `hydra.searchpath`, its own module importable), each run through
`python train.py` (in-process, tests/helpers/inprocess.py) and counted: how many files the recipe
wrote, and that it wrote none in the repository."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers.e2e import REPO, TINY
from tests.helpers.inprocess import run_train

pytestmark = pytest.mark.slow  # each recipe trains, in this process or in train.py's


def _write(root: Path, files: dict[str, str]) -> list[Path]:
    """The recipe's files under `root`, as a fork would write them."""
    written = []
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        written.append(path)
    return written


def _repo_untouched() -> None:
    """No file under src/ or conf/ changed or appeared (the recipe lives in the fork's own folder)."""
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--", "src", "conf"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert changed == "", changed


@pytest.fixture
def fork(tmp_path, monkeypatch):
    """A fork's folder: `conf/` for its configs, `code/` for its modules (on sys.path, as PYTHONPATH would)."""
    root = tmp_path / "fork"
    (root / "conf").mkdir(parents=True)
    (root / "code").mkdir()
    monkeypatch.syspath_prepend(str(root / "code"))
    yield root
    for name in [m for m in sys.modules if m.startswith("fork_")]:
        del sys.modules[name]  # the next test's fork module of the same name is its own


def _searchpath(root: Path) -> str:
    return f"hydra.searchpath=[file://{root / 'conf'}]"


def test_an_optimizer_is_one_yaml(fork, tmp_path):
    files = _write(
        fork,
        {
            "conf/optimizer/sgd.yaml": """
            _target_: torch.optim.SGD
            _partial_: true
            name: sgd
            lr: ${model.lr}
            momentum: 0.9
            weight_decay: 0.0
            """
        },
    )
    proc = run_train(*TINY, _searchpath(fork), "optimizer=sgd", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = proc.record
    assert record["status"] == "ok"
    assert record["settings"]["optimizer"] == "sgd"
    assert record["global_steps"] > 0
    assert len(files) == 1
    _repo_untouched()


def test_a_head_is_one_module_and_one_yaml(fork, tmp_path):
    files = _write(
        fork,
        {
            "code/fork_heads.py": """
            import torch

            from bertlab.heads.modules import Head


            class FirstLastHead(Head):
                \"\"\"[CLS] of the first and the last layer, concatenated.\"\"\"

                def __init__(self, config, dropout=None):
                    super().__init__(config, 2 * config.hidden_size, dropout)
                    self.reset_parameters()

                def forward(self, hidden_states, attention_mask):
                    return self.classify(torch.cat([hidden_states[1][:, 0], hidden_states[-1][:, 0]], dim=-1))
            """,
            "conf/head/first_last.yaml": """
            _target_: fork_heads.FirstLastHead
            _partial_: true
            name: first_last
            dropout: null
            """,
        },
    )
    proc = run_train(*TINY, _searchpath(fork), "head=first_last", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = proc.record
    assert record["status"] == "ok"
    assert record["settings"]["head"] == "first_last"
    assert record["head"].startswith("new first_last head")
    # the fork's head trains: LLRD's head group and the diagnostics see it as the classifier
    assert record["diagnostics"]["relative_change"]["classifier"] > 0
    assert len(files) == 2
    _repo_untouched()


def test_a_fine_tuning_method_is_one_module_and_one_yaml(fork, tmp_path):
    """A method that acts during training is a Lightning callback of the fork's own, picked as one
    `method=` option (a column beside the paper's, swept as they are): gradient noise (Neelakantan
    et al. 2015) adds N(0, std^2) to every gradient before each optimizer step."""
    files = _write(
        fork,
        {
            "code/fork_methods.py": """
            import json

            import torch
            from lightning.pytorch.callbacks import Callback


            class GradientNoise(Callback):
                def __init__(self, std, run_dir):
                    self.std, self.run_dir, self.steps, self.added = std, run_dir, 0, 0.0

                def on_before_optimizer_step(self, trainer, pl_module, optimizer):
                    for p in pl_module.parameters():
                        if p.grad is not None:
                            noise = torch.randn_like(p.grad) * self.std
                            p.grad.add_(noise)
                            self.added += float(noise.square().sum())
                    self.steps += 1

                def on_train_end(self, trainer, pl_module):
                    (self.run_dir / "grad_noise.json").write_text(json.dumps({"steps": self.steps, "added": self.added}))
            """,
            "conf/method/grad_noise.yaml": """
            # @package _global_
            defaults:
              - standard
            callbacks:
              grad_noise:
                _target_: fork_methods.GradientNoise
                _partial_: true
                std: 0.01
            """,
        },
    )
    run_dir = tmp_path / "run"
    proc = run_train(*TINY, _searchpath(fork), "method=grad_noise", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = proc.record
    assert record["status"] == "ok"
    noised = json.loads((run_dir / "grad_noise.json").read_text())
    assert noised["steps"] == record["global_steps"] > 0
    assert noised["added"] > 0
    assert record["settings"]["reinit"] == 0  # the preset's base (method/standard.yaml) came with it
    assert len(files) == 2
    _repo_untouched()

    # a key of the fork's method is refused before the run, with the keys its class takes
    proc = run_train(*TINY, _searchpath(fork), "method=grad_noise", "+callbacks.grad_noise.sdt=0.1")
    assert proc.returncode == 1
    assert "callbacks.grad_noise" in proc.stderr and "sdt" in proc.stderr
    assert "Traceback" not in proc.stderr
