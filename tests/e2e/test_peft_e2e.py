"""peft= through `python train.py`, one run per option on the tiny model (debug=fast): it trains
what it should (result.json's `parameters`), and a saved adapter is evaluated to the run's own
test metrics by `bertlab evaluate`."""

import json

import pytest

from tests.helpers.e2e import TINY, python, run_train
from tests.helpers.installed import needs

pytestmark = needs("peft")

# each option with one more key that composes with it (the head's lr, a re-drawn pooler, gradient
# checkpointing); the counts themselves are checked per family in test_peft.py
OPTIONS = {
    "lora": ["peft=lora", "save_weights=true"],
    "ia3": ["peft=ia3", "optimizer.head_lr_mult=10"],
    "prefix": ["peft=prefix", "reinit_pooler=true"],
    "bitfit": ["peft=bitfit", "trainer.gradient_checkpointing=true"],
}


@pytest.mark.slow
@pytest.mark.parametrize("option", OPTIONS)
def test_each_peft_option_end_to_end(tmp_path, option):
    run_dir = tmp_path / option
    proc = run_train(*TINY, *OPTIONS[option], f"hydra.run.dir={run_dir}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "ok"
    assert result["settings"]["peft"] == option
    counts = result["parameters"]
    assert 0 < counts["trainable"] < counts["total"] / 50  # a sliver of the ~1M
    lrs = result["diagnostics"]["peak_lr"]
    if option == "ia3":  # the head at 10x the base lr; the IA3 scales at the base lr, never decayed
        assert set(lrs) == {"head/decay", "head/no_decay", "all/no_decay"}
        assert lrs["head/decay"] == pytest.approx(10 * lrs["all/no_decay"])
    if option == "lora":
        saved = sorted(p.name for p in (run_dir / "model").iterdir())
        assert {"adapter_model.safetensors", "adapter_config.json", "peft.json"} <= set(saved)
        assert "model.safetensors" not in saved
        evaluated = python("-m", "bertlab.cli", "evaluate", str(run_dir))
        assert evaluated.returncode == 0, evaluated.stderr[-2000:]
        metric = f"test/{result['main_metric']}"
        own = result["metrics"][f"test_best/{result['main_metric']}"]
        output = evaluated.stdout + evaluated.stderr
        line = next(line for line in output.splitlines() if metric in line)
        assert float(line.split()[1]) == pytest.approx(own, abs=1e-4), output
