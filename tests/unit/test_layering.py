"""The package's layering, read from its source: every import (at the top of a module or inside a
function) runs downward through LAYERS, and no two modules import each other, directly or round a
longer loop. docs/architecture.md describes the layers; this is the check that keeps it true."""

import ast
from collections import defaultdict
from pathlib import Path

import bertlab

SRC = Path(bertlab.__file__).parent

# Bottom to top. A package imports only from its own layer's packages' modules and from layers below;
# within one layer, packages do not import each other.
LAYERS = [
    ["core"],  # errors, paths, records, lines, value rules, optional libraries, `_target_` entries, devices, limits
    ["model", "data", "sweep"],  # encoders and their parts; reading, sampling, tokenising; sweep folders
    ["problems"],  # the kinds of task, one folder each (reader, encoder, metrics), and the shared metrics
    ["optim", "loggers"],  # parameter groups, optimizers, schedules; the run's loggers and dashboards
    ["callbacks"],  # keep-best, throughput, diagnostics, resume
    ["heads", "pretrain"],  # classifier heads on the encoder; further MLM/NSP pre-training
    ["methods"],  # re-init, mixout, prior WD, PEFT, self-distillation's loss, auxiliary objectives
    ["training"],  # the LightningModule and the shared metrics
    ["prompt", "setfit"],  # the approaches beyond a classifier head
    ["config"],  # the command line's keys, checked before Hydra composes
    ["run"],  # one job: the checks, the composition, fit, record, predict, evaluate
    ["report"],  # the results of many runs
    ["cli"],  # the `bertlab` command
    ["__init__", "__main__"],
]
LAYER = {package: i for i, names in enumerate(LAYERS) for package in names}


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        found[".".join(parts).removesuffix(".__init__")] = path
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def _run_time_nodes(tree):
    """Every node but those under `if TYPE_CHECKING:`: imports for type annotations only, never run."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if (
                isinstance(child, ast.If)
                and getattr(child.test, "id", getattr(child.test, "attr", None)) == "TYPE_CHECKING"
            ):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package's modules it imports (the longest prefix that is a module)."""
    graph = defaultdict(set)
    for module, path in modules.items():
        for node in _run_time_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                if not name.startswith("bertlab"):
                    continue
                while name not in modules and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name != module:
                    graph[module].add(name)
    return graph


def test_every_package_has_a_layer():
    packages = {_package(m) for m in _modules()}
    assert packages <= set(LAYER), f"add to LAYERS: {sorted(packages - set(LAYER))}"


def test_imports_run_downward():
    upward = []
    for module, targets in _imports(_modules()).items():
        here = _package(module)
        for target in targets:
            there = _package(target)
            if there != here and (LAYER[there] >= LAYER[here]) and there != "__init__":
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that do not run downward:\n" + "\n".join(sorted(upward))


def test_no_module_imports_itself_round_a_loop():
    graph = _imports(_modules())
    loops, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if target.startswith(module + "."):
                continue  # a package's __init__ naming its own modules
            if state.get(target) == "open":
                loops.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not loops, "import loops:\n" + "\n".join(loops)
