"""The docs site's generated parts (mkdocs.yml `hooks:`): what is written from the code and the benchmark
files at build time, so that it cannot drift from them.

A page asks for a part with a marker comment on a line of its own; `on_page_markdown` replaces it:

    <!-- generated: layout -->                         the packages and modules, each with its docstring's summary
    <!-- generated: config-groups -->                  every config group under conf/ with its options
    <!-- generated: docstring bertlab.training.finetuner -->   a module's docstring, verbatim
    <!-- generated: bench -->                          every docs/bench/*.json as tables

Everything is read statically (`ast`, `json`): the build imports neither torch nor bertlab. Our own
code rather than a plugin (mkdocs-gen-files, mkdocs-macros): a hundred lines that read our files
beat another dependency whose pages would still need the same code to render the JSON.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "bertlab"
MARKER = re.compile(r"^<!-- generated: (?P<what>[\w-]+)(?: (?P<arg>\S+))? -->$", re.MULTILINE)


@functools.cache  # the layout and the tests ask for each module once more
def summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line (empty when it has none)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def layout() -> str:
    """One table per package of src/bertlab, sub-packages included (and the Hydra plugins, scripts/):
    module -> docstring summary."""
    out = []
    # every package, a sub-package after its parent (problems/ then problems/<kind>/)
    folders = [PACKAGE] + sorted((p.parent for p in PACKAGE.rglob("*/__init__.py")), key=lambda p: p.parts)
    folders += [REPO / "src" / "hydra_plugins" / "bertlab_launchers", REPO / "scripts"]
    for folder in folders:
        rel = folder.relative_to(REPO).as_posix()
        init = folder / "__init__.py"
        out.append(f"### `{rel}/`\n")
        if init.exists() and summary(init):
            out.append(summary(init) + "\n")
        out.append("| module | what it holds |\n|---|---|")
        for module in sorted(folder.glob("*.py")):
            if module.name != "__init__.py":
                out.append(f"| `{module.name}` | {_cell(summary(module))} |")
        out.append("")
    return "\n".join(out)


def config_groups() -> str:
    """Every config group (a folder of YAML files under conf/) with its options."""
    conf = PACKAGE / "conf"
    rows = ["| group | options |", "|---|---|"]
    groups = sorted({y.parent for y in conf.rglob("*.yaml") if y.parent != conf})
    for group in groups:
        options = ", ".join(f"`{y.stem}`" for y in sorted(group.glob("*.yaml")))
        rows.append(f"| `{group.relative_to(conf).as_posix()}` | {options} |")
    return "\n".join(rows) + "\n"


def docstring(dotted: str) -> str:
    """A module's docstring as a text block (numbered lists and indents kept as written)."""
    path = REPO / "src" / Path(*dotted.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    if not doc:
        raise ValueError(f"{path.relative_to(REPO)} has no module docstring to include")
    return f"From the docstring of `{path.relative_to(REPO).as_posix()}`:\n\n```text\n{doc}\n```\n"


# ---- docs/bench/*.json (written by `python -m scripts.bench --json`), one renderer per section.


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _num(value, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def _equal_settings(s: dict) -> list[str]:
    rows = [
        f"Equal settings: {s['task']}, {s['steps']} steps after {s['warmup_steps']} warm-up, batch "
        f"{s['batch_size']}, {s['repeats']} interleaved repeats.\n",
        "| loop | samples/s (repeats) | median |",
        "|---|---|---:|",
    ]
    for name, values in s["samples_per_s"].items():
        rows.append(f"| {name} | {', '.join(_num(v) for v in values)} | {_num(s['median_samples_per_s'][name])} |")
    rows.append(
        f"\nvs `transformers.Trainer`: **{s['ratio_vs_trainer']:.3f}x**; vs a bare loop: **{s['ratio_vs_bare']:.3f}x**."
    )
    return rows


def _padding(s: dict) -> list[str]:
    rows = [
        "Padding efficiency (real / processed training tokens):\n",
        "| data | real data | examples | mean tokens | pad to 128 | dynamic | dynamic + group_by_length |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for task, p in s.items():
        rows.append(
            f"| {task} | {'yes' if p['real_data'] else 'no'} | {_num(p['n_train'])} | {_num(p['mean_tokens'], 1)} | "
            f"{_num(p['pad_to_128'])} | {_num(p['dynamic'])} | {_num(p['dynamic_grouped'])} |"
        )
    return rows


def _optimizer(s: dict) -> list[str]:
    rows = [
        f"One optimizer step over {s['params']:,} parameters ({s['device']}, {s['threads']} threads, "
        f"median of {s['repeats']} after {s['warmup']} warm-up):\n",
        "| optimizer | median s |",
        "|---|---:|",
    ]
    rows += [f"| {name} | {_num(v, 3)} |" for name, v in s["median_s"].items()]
    rows.append(f"\nratio: **{s['ratio']:.3f}x**")
    return rows


def _whole_runs(s: dict) -> list[str]:
    rows = [
        "Whole runs (command to exit), medians over the repeats:\n",
        "| task | variant | runs | wall s | start-up s | train samples/s | padding eff. | test (last) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for task, t in s.items():
        for variant, runs in t["runs"].items():
            rows.append(
                f"| {task} | {variant} | {len(runs)} | {_num(t['median_wall_s'][variant], 1)} | "
                f"{_num(_median([r['startup_s'] for r in runs]), 1)} | "
                f"{_num(t['median_train_samples_per_s'][variant], 1)} | {_num(runs[0]['padding_efficiency'])} | "
                f"{runs[0]['main_metric']} {_num(_median([r['test']['last'] for r in runs]), 3)} |"
            )
    rows.append("")
    for task, t in s.items():
        rows.append(
            f"- {task}: whole run **{t['speedup_wall']:.2f}x**, training samples/s {t['speedup_samples_per_s']:.2f}x; "
            f"overrides `{' '.join(t['overrides'])}`"
        )
    return rows


def _startup(s: dict) -> list[str]:
    rows = [
        f"Start-up, command to the first training step ({s['repeats']} interleaved repeats):\n",
        "| command | seconds (repeats) | median |",
        "|---|---|---:|",
    ]
    for name, values in s["seconds"].items():
        rows.append(f"| {name} | {', '.join(_num(v) for v in values)} | {_num(s['median_s'][name])} |")
    rows.append(
        f"\nover the floor: **{s['over_floor_s']:+.2f} s** "
        f"({s['over_floor_with_model_code_s']:+.2f} s over the floor with the model code), "
        f"{s['ratio_to_floor']:.2f}x the floor"
    )
    if "over_floor_collector_paused_s" in s:  # files from 2026-12-08 on (core/gc_pause.py)
        rows.append(f"; {s['over_floor_collector_paused_s']:+.2f} s over the floor with the collector paused")
    if "baseline" in s:  # --startup-baseline: another checkout, interleaved with this one
        rows.append(f"; the baseline ({s['baseline']}): **{s['baseline_over_floor_s']:+.2f} s** over the floor")
    return rows


def _generic(s) -> list[str]:
    """A section no renderer knows yet: its scalar values, flattened, so that a new section shows at once."""
    rows = ["| key | value |", "|---|---|"]

    def walk(node, prefix):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        elif isinstance(node, list):
            rows.append(f"| {prefix} | {_cell(', '.join(_num(v) for v in node if not isinstance(v, (dict, list))))} |")
        else:
            rows.append(f"| {prefix} | {_cell(_num(node, 4))} |")

    walk(s, "")
    return rows


SECTIONS = {
    "equal_settings": _equal_settings,
    "padding": _padding,
    "optimizer": _optimizer,
    "whole_runs": _whole_runs,
    "startup": _startup,
}
HEADER_KEYS = {"quick", "model", "started", "machine", "note"}


def bench_file(path: Path) -> str:
    """One benchmark JSON as markdown: when, on what, then each section's table."""
    data = json.loads(path.read_text(encoding="utf-8"))
    m = data.get("machine", {})
    load = m.get("loadavg_start")
    out = [
        f"### {path.name}\n",
        f"Started {data.get('started', '?')}; model `{data.get('model', '?')}`"
        f"{' (--quick)' if data.get('quick') else ''}; {m.get('cores', '?')}-core {m.get('cpu', '?')} "
        f"{m.get('device', '?')}, torch {m.get('torch', '?')}, {m.get('torch_threads', '?')} threads"
        + (f"; load average at the start {load[0]:.2f}" if load else "")
        + f". [JSON](bench/{path.name})\n",
    ]
    if data.get("note"):
        out.append(f"Note: {data['note']}\n")
    for key, section in data.items():
        if key not in HEADER_KEYS:
            out += SECTIONS.get(key, _generic)(section)
            out.append("")
    return "\n".join(out)


def bench() -> str:
    files = sorted((REPO / "docs" / "bench").glob("*.json"))
    return "\n".join(bench_file(path) for path in files) if files else "No benchmark file in docs/bench/ yet.\n"


PARTS = {"layout": layout, "config-groups": config_groups, "docstring": docstring, "bench": bench}


def render(markdown: str) -> str:
    """Replace every marker of a page by its part; an unknown marker is an error (mkdocs stops on it)."""

    def part(match: re.Match) -> str:
        what, arg = match["what"], match["arg"]
        if what not in PARTS:
            raise ValueError(f"unknown generated part {what!r} (known: {', '.join(PARTS)})")
        return PARTS[what](arg) if arg else PARTS[what]()

    return MARKER.sub(part, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:  # mkdocs hook
    return render(markdown)
