"""bertlab as a built package, not a checkout: the wheel holds the configs and the launcher plugin,
and its `bertlab-train` runs from any folder (docs/design.md#packaging).

Slow (a wheel build, an install and one `debug=fast` run, about a minute on 2 CPU cores):
`make test-fast` leaves it out. The install goes into a temporary folder with `--no-deps`; the
dependencies come from the running environment, while PYTHONPATH puts the installed copy of
bertlab first (ahead of an editable install of the checkout).
"""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers.e2e import REPO, train_env

pytestmark = pytest.mark.slow

LAUNCHER = [
    "hydra_plugins/bertlab_launchers/__init__.py",
    "hydra_plugins/bertlab_launchers/gpus_launcher.py",
    "hydra_plugins/bertlab_launchers/optuna_sweeper.py",
]


def pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"pip {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy of what the wheel is made of: setuptools builds in the source tree, and its
    # build/ folder keeps files deleted since, which a later wheel built there would still carry.
    src = tmp_path_factory.mktemp("source")
    shutil.copy(REPO / "pyproject.toml", src)
    shutil.copy(REPO / "README.md", src)  # the package's long description
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src", src / "src", ignore=ignore, symlinks=True)  # bertlab/conf stays a link
    shutil.copytree(REPO / "conf", src / "conf", ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    pip("wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out), str(src))
    (found,) = out.glob("bertlab-*.whl")
    return found


def test_the_wheel_holds_every_config_and_the_launcher_plugin(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    conf = REPO / "conf"
    yamls = [f"bertlab/conf/{p.relative_to(conf).as_posix()}" for p in conf.rglob("*.yaml")]
    assert len(yamls) > 30  # train.yaml and every group's options
    assert sorted(set(yamls) - names) == []
    assert sorted(set(LAUNCHER) - names) == []
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "bertlab-train = bertlab.run.entry:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_package_finds_the_top_level_conf_through_its_link():
    # src/bertlab/conf is a link to conf/ (pyproject.toml says why); a checkout without links
    # (Windows without core.symlinks) gets a text file there instead
    from bertlab.core.paths import CONF_DIR

    link = REPO / "src" / "bertlab" / "conf"
    assert link.is_symlink() and link.resolve() == (REPO / "conf").resolve()
    assert CONF_DIR == (REPO / "conf").resolve() and (CONF_DIR / "train.yaml").is_file()


def test_the_installed_console_script_trains_from_another_folder(wheel, tmp_path):
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip("install", "--no-deps", "--quiet", "--target", str(site), str(wheel))
    env = train_env({"PYTHONPATH": str(site)})
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import bertlab, hydra_plugins.bertlab_launchers as p; print(bertlab.__file__, p.__file__)",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.returncode == 0, where.stderr[-3000:]
    assert all(Path(f).is_relative_to(site) for f in where.stdout.split()), where.stdout  # the installed copy runs

    proc = subprocess.run(
        [str(site / "bin" / "bertlab-train"), "debug=fast"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = (elsewhere / "outputs").glob("*/*/result.json")  # outputs/<day>/<time>/ under the folder it ran in
    assert json.loads(result.read_text())["status"] == "ok"
