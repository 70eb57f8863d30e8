"""What a run with `save_weights=true` leaves for `bertlab predict` and `evaluate`, and reading it back.

`<run_dir>/model/` holds the best weights and the tokenizer in Hugging Face format (loadable with
`from_pretrained` alone; the label names are the config's id2label) and `bertlab.yaml`, the run's
resolved config. Hydra's `.hydra/config.yaml` is not enough: it is unresolved, and a csv task's
labels inferred from the training file (`task.labels: null`) are only known once the data is read.
"""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from bertlab.core.atomic import follow_umask
from bertlab.core.errors import BertlabError, ConfigError
from bertlab.heads.fusion import save_fusion
from bertlab.heads.model import save_config
from bertlab.methods.peft_tuning import peft_method, save_adapter
from bertlab.model.anatomy import inner_model
from bertlab.problems.registry import problem_of

TRAINING_EXTRAS = ("aux_objective", "feature_fusion")  # modules on the model that save_pretrained must not write
MODEL_DIR = "model"
SAVED_CONFIG = "bertlab.yaml"
RERUN = "re-run it with save_weights=true (e.g. `python train.py <its overrides> save_weights=true`)"

# Defaults live only in conf/: a group option of a fork's own (its own task or trainer YAML) must
# set every key that every packaged option of that group sets; else the run would stop later on
# OmegaConf's traceback for the first key the code reads.
COMPLETE_GROUPS = ("task", "trainer")


class SavedRunError(BertlabError):
    """A run folder without what predict / evaluate need."""


def save_run_model(cfg: DictConfig, model, tokenizer, run_dir: Path, base: str | None = None) -> None:
    """`base`: where the run's pretrained weights came from (model.name_or_path, or a further
    pre-trained model's folder); a peft= run saves its adapter and head only, and names it."""
    folder = Path(run_dir) / MODEL_DIR
    if problem_of(cfg.task).classifies_texts:  # the names in the HF config too, for those loading it alone
        model.config.id2label = {i: str(label) for i, label in enumerate(cfg.task.labels)}
        model.config.label2id = {str(label): i for i, label in enumerate(cfg.task.labels)}
    # the classifier alone: the auxiliary objective only trained (methods/auxiliary.py), and the side
    # features' fusion is saved beside it (heads/fusion.py), so from_pretrained reads the folder as ever
    extras = {name: model._modules.pop(name) for name in TRAINING_EXTRAS if name in model._modules}
    try:
        method = peft_method(cfg).name
        if method == "none":
            model.save_pretrained(folder)
        else:
            base = base or cfg.model.name_or_path
            local = Path(base).expanduser()
            save_adapter(model, method, str(local.resolve()) if local.exists() else base, folder)
            save_config(inner_model(model)[0], folder)  # config.json: the labels and the head, for the rebuild
    finally:
        model._modules.update(extras)
    save_fusion(model, folder)
    tokenizer.save_pretrained(folder)
    (folder / SAVED_CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    follow_umask(folder)  # transformers writes the weights 0600


def frozen_weights(saved: dict, model_dir: Path) -> str:
    """Where a peft= run's frozen weights are (its peft.json's `base`), or SavedRunError."""
    base = saved["base"]
    if base.startswith("/") and not Path(base).exists():
        raise SavedRunError(
            f"{model_dir} holds a peft={saved['method']} adapter trained on the weights in {base}, which is gone "
            f"(a further pre-trained model's folder, moved or deleted): restore it, or {RERUN}."
        )
    return base


def saved_model_dir(run_dir: Path) -> Path:
    """`<run_dir>/model`, or SavedRunError saying what is missing and how to get it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SavedRunError(
            f"{run_dir} is not a folder; give a run folder (e.g. outputs/<date>/<time> or multirun/<date>/<time>/<job>)."
        )
    folder = run_dir / MODEL_DIR
    if not (folder / "config.json").is_file():
        raise SavedRunError(f"{run_dir} has no saved weights ({folder}/ is absent or empty): {RERUN}.")
    if not (folder / SAVED_CONFIG).is_file():
        raise SavedRunError(f"{folder} holds weights but not {SAVED_CONFIG} (saved by an older bertlab): {RERUN}.")
    return folder


def load_saved_config(model_dir: Path, overrides: list[str] | None = None) -> DictConfig:
    """The run's resolved config with `key=value` overrides (existing keys only) applied."""
    path = Path(model_dir) / SAVED_CONFIG
    try:
        cfg = OmegaConf.load(path)
    except (OSError, OmegaConfBaseException) as err:
        raise SavedRunError(f"{path} cannot be read ({err}): {RERUN}.") from None
    fill_keys_added_since(cfg)
    OmegaConf.set_struct(cfg, True)
    for override in overrides or []:
        key, sep, value = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"{override}: an override is key=value (e.g. task.n_test=null).")
        if OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
            raise ConfigError(
                f"{override}: unknown config key '{key}' in {path}; overrides set keys of the run's config "
                "(e.g. task.data_dir=DIR, task.n_test=null, data.eval_batch_size=128)."
            )
        try:
            OmegaConf.update(cfg, key, _yaml_value(value), merge=False)
        except OmegaConfBaseException as err:
            raise ConfigError(f"{override}: {str(err).splitlines()[0]}") from None
    return cfg


_ABSENT = object()


def fill_keys_added_since(cfg: DictConfig) -> None:
    """A config saved by an older bertlab lacks the keys added since (e.g. task.k_shot,
    trainer.gradient_checkpointing), which train.py's checks require of a config of one's own. Each
    gets the value that leaves the run as it was: a task or trainer key that the packaged option
    (the run's own, else any) sets to null or false, i.e. off; `init_seed` and `order_seed` are the
    run's `seed`, which stood for both. A key added with another default stays missing, and the
    check names it."""
    import yaml

    from bertlab.core.paths import CONF_DIR

    with open_dict(cfg):
        for group in COMPLETE_GROUPS:
            if group not in cfg:
                continue
            own = CONF_DIR / group / f"{cfg[group].get('name')}.yaml"
            packaged = own if own.is_file() else CONF_DIR / group / "default.yaml"
            if not packaged.is_file():
                packaged = sorted((CONF_DIR / group).glob("*.yaml"))[0]
            for key, value in (yaml.safe_load(packaged.read_text()) or {}).items():
                if key not in cfg[group] and key != "defaults" and (value is None or value is False):
                    cfg[group][key] = value
        if "seed" in cfg:
            for key in ("init_seed", "order_seed"):
                if key not in cfg:
                    cfg[key] = cfg.seed


def _yaml_value(text: str):
    """A command-line value as Hydra reads it for plain values: YAML (null, 3, 1e-5, [a,b], true)."""
    import yaml

    try:
        return yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        return text
