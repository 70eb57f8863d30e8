"""core/hydra_speed.py: the same configs and the same errors, composed faster."""

import pathlib
from contextlib import contextmanager

import omegaconf._utils
import pytest
import yaml
from omegaconf import OmegaConf

from bertlab.core import hydra_speed
from bertlab.core.hydra_speed import _libyaml_loader, omegaconf_loader
from bertlab.core.paths import CONF_DIR

libyaml = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML was built without libyaml")


def both(text: str):
    """What each loader makes of `text`: (OmegaConf's, libyaml's), or the error each raised."""
    out = []
    for loader in (omegaconf_loader(), _libyaml_loader(omegaconf_loader())):
        try:
            out.append(yaml.load(text, Loader=loader))
        except yaml.YAMLError as err:
            marks = (err.problem_mark, err.context_mark)  # the Python parser's also quote the line: compare places
            out.append((type(err).__name__, *((m.name, m.line, m.column) if m else None for m in marks)))
    return out


@libyaml
@pytest.mark.parametrize("path", sorted(CONF_DIR.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONF_DIR)))
def test_every_packaged_config_reads_the_same(path):
    ours, theirs = both(path.read_text())
    assert ours == theirs
    assert type(ours) is dict or ours is None


@libyaml
@pytest.mark.parametrize(
    "text",
    [
        "lr: 1e-5\neps: 1.0e-8\nn: 10\nx: .5\ny: -.inf\nz: 1_000\n",  # YAML 1.2 floats, as OmegaConf reads them
        "when: 2001-12-14\n",  # a date stays a string (OmegaConf drops the timestamp resolver)
        "a: yes\nb: null\nc: ~\nd: 0x1F\ne: '0x1F'\nf: 0o17\n",
        "p: !!python/object/apply:pathlib.Path [a, b]\n",
        "list: [1, {k: v}, [x]]\nnested:\n  deep:\n    - 1\n    - two\n",
        "s: ${oc.env:HOME}\nt: '${a.b}'\n",
    ],
)
def test_scalars_and_tags_read_the_same(text):
    ours, theirs = both(text)
    assert ours == theirs
    if "pathlib" in text:
        assert theirs["p"] == pathlib.Path("a", "b")


@libyaml
@pytest.mark.parametrize(
    "text",
    ["a: 1\nb: [1, 2\nc: 3\n", "a: 1\na: 2\n", "a:\n  b: 1\n c: 2\n", "a: 'open\n"],
    ids=["unclosed_list", "duplicate_key", "bad_indent", "unclosed_quote"],
)
def test_broken_yaml_fails_at_the_same_line_and_column(text):
    ours, theirs = both(text)
    assert isinstance(theirs, tuple), theirs
    assert ours == theirs, (ours, theirs)


@libyaml
def test_a_broken_file_is_named_with_its_line(tmp_path):
    hydra_speed.speed_up_hydra()
    bad = tmp_path / "mine.yaml"
    bad.write_text("lr: 1\nlr: 2\n")
    with pytest.raises(yaml.constructor.ConstructorError, match=r'found duplicate key lr\s+in ".*mine.yaml", line 2'):
        OmegaConf.load(bad)
    assert omegaconf._utils.get_yaml_loader().__name__ == "OmegaConfCLoader"


# ---------------------------------------------------------------- whole compositions, with and without


@contextmanager
def hydras_own():
    """The libraries' own functions, while the block runs (speed_up_hydra is installed in this process)."""
    hydra_speed.speed_up_hydra()
    ours = [(owner, name, getattr(owner, name)) for owner, name, _ in hydra_speed.SWAPPED]
    try:
        for owner, name, own in hydra_speed.SWAPPED:
            setattr(owner, name, own)
        yield
    finally:
        for owner, name, mine in ours:
            setattr(owner, name, mine)


def composed(conf_dir, overrides) -> str:
    """The composition as YAML (the hydra node too), or the error Hydra raised."""
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose("train" if conf_dir == CONF_DIR else "config", overrides=overrides, return_hydra_config=True)
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return OmegaConf.to_yaml(cfg)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["experiment=paper_full", "method=mixout", "task=rte", "task.data_dir=/data/x"],
        ["task=conll2003", "model=tiny", "logger=many", "pretrain=dapt_tapt", "debug=fast"],
        ["approach=prompt", "aux=mlm", "peft=lora", "hydra/launcher=gpus", "hparams_search=lr_warmup"],
        ["task=swag", "head=scalar_mix", "augment=eda", "distill=self", "protocol=lmbff"],
        ["task=nope"],  # an error: the same message
        ["+optimizer.nope=1", "optimizer=bertadam"],
    ],
    ids=["defaults", "paper", "token_many", "prompt_lora_gpus", "choices_protocol", "bad_option", "added_key"],
)
def test_packaged_configs_compose_the_same(overrides):
    fast = composed(CONF_DIR, overrides)
    with hydras_own():
        assert omegaconf._utils.get_yaml_loader().__name__ == "OmegaConfLoader"  # OmegaConf's own in the block
        assert composed(CONF_DIR, overrides) == fast


def test_interpolated_defaults_compose_the_same(tmp_path):
    """Hydra's interpolated defaults (ours have none): the map of choices is read, and built in time."""
    for path, text in {
        "config.yaml": "defaults:\n  - server: apache\n  - db: ${server}_db\n  - _self_\nx: 1\n",
        "server/apache.yaml": "port: 80\n",
        "server/nginx.yaml": "port: 8080\n",
        "db/apache_db.yaml": "name: from_apache\n",
        "db/nginx_db.yaml": "name: from_nginx\n",
    }.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    for overrides in ([], ["server=nginx"], ["db=apache_db"]):
        fast = composed(tmp_path, overrides)
        with hydras_own():
            assert composed(tmp_path, overrides) == fast
    assert "name: from_nginx" in composed(tmp_path, ["server=nginx"])
    (tmp_path / "config.yaml").write_text("defaults:\n  - db: ${nothing}_db\n")
    fast = composed(tmp_path, [])
    assert "Error resolving interpolation '${nothing}_db'" in fast
    with hydras_own():
        assert composed(tmp_path, []) == fast
