"""Config groups that pick an implementation by `_target_`, as Hydra's `instantiate` reads it.

An option of such a group (conf/optimizer/*.yaml, conf/schedule/*.yaml) names the class or
function in `_target_` and gives its keyword arguments as keys; `_partial_: true` because the
first argument (the parameters, the optimizer) only exists at fit time. So a new optimizer is a
new yaml file, e.g. conf/optimizer/sgd.yaml:

    _target_: torch.optim.SGD
    _partial_: true
    name: sgd                # labels the run (result.json settings, W&B tags)
    lr: ${model.lr}
    momentum: 0.9

Every mistake here is a ConfigError that names the key, the value and the fix, not a traceback:
a `_target_` that cannot be imported, a key the target does not take, a value it refuses.
`name` labels the run and reaches the target only when the target has a `name` argument.
"""

import difflib
import inspect
import logging
from collections.abc import Callable, Mapping

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from bertlab.core.errors import ConfigError
from bertlab.core.paths import CONF_DIR
from bertlab.core.values import full_key

INSTANTIATE_KEYS = ("_target_", "_partial_")


def plain(cfg: Mapping) -> dict:
    """A config node as a plain dict with its interpolations (e.g. `lr: ${model.lr}`) resolved."""
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def packaged_option(group: str, name) -> dict | None:
    """conf/<group>/<name>.yaml, unresolved; None when bertlab ships no such option."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not isinstance(name, str) or not path.is_file():
        return None
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def with_target(group: str, cfg: Mapping, builder_keys: set[str], example: str) -> dict:
    """`cfg` as a plain dict with a `_target_` and a `name` (the run's label; `example`: one of ours,
    for the message).

    A config without a `_target_` (a hand-written dict in code or tests: `{"name": "linear"}`) is read
    as the packaged option its `name` names: that option's target and target arguments, under
    the given keys. The keys the builder reads itself (`builder_keys`) are not taken from the
    option, so they keep the builder's defaults."""
    cfg = plain(cfg)
    if "_target_" not in cfg:
        cfg = _packaged_target(group, cfg, builder_keys)
    name = cfg.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"{full_key(group)}.name={name!r} is invalid; valid: a non-empty label such as {example} "
            "(it names the run in result.json and the W&B tags)"
        )
    return cfg


def _packaged_target(group: str, cfg: dict, builder_keys: set[str]) -> dict:
    name = cfg.get("name")
    option = packaged_option(group, name)
    if option is None or "_target_" not in option:
        shipped = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        raise ConfigError(
            f"{full_key(group)}.name={name!r} is unknown; valid: {', '.join(shipped)} (the options in conf/{group}/), "
            f"or give {full_key(group)}._target_ (a class or function to call) in your own {group} yaml"
        )
    defaults = {k: v for k, v in option.items() if k not in builder_keys}
    return {**defaults, **cfg}


def _get_object(path: str):
    """hydra.utils.get_object (the public face of what instantiate imports with), without the
    error it logs before raising: our ConfigError is the one message."""
    hydra_log = logging.getLogger("hydra.utils")
    disabled, hydra_log.disabled = hydra_log.disabled, True
    try:
        return get_object(path)
    finally:
        hydra_log.disabled = disabled


def locate(group: str, cfg: Mapping, what: str, partial_only: bool = True) -> Callable:
    """The object `cfg._target_` names; `what` says what it should be, for the message.
    `partial_only`: `_partial_` must be true (the optimizer and schedule groups); otherwise a
    boolean (the callbacks and logger entries, core/entries.py)."""
    path = cfg.get("_target_")
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{full_key(group)}._target_={path!r} is invalid; valid: the dotted import path of {what}")
    try:
        target = _get_object(path)
    except Exception as err:  # ImportError, AttributeError, or whatever the module raises on import
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"{full_key(group)}._target_={path!r} cannot be imported ({reason}); valid: the dotted import path of "
            f"{what}; check the spelling and that its package is installed"
        ) from None
    if not callable(target):
        raise ConfigError(
            f"{full_key(group)}._target_={path!r} is a {type(target).__name__}, not callable; valid: {what}"
        )
    partial = cfg.get("_partial_", True)
    if not partial_only and isinstance(partial, bool):
        return target
    if partial is not True:
        raise ConfigError(
            f"{full_key(group)}._partial_={partial!r} is invalid; valid: true (bertlab calls the target at fit time, "
            "when the first argument exists)"
        )
    return target


def target_kwargs(
    group: str, cfg: Mapping, target: Callable, supplied: dict[str, str], read_here=(), first_supplied: bool = True
) -> dict:
    """The keyword arguments `cfg` gives its target: every key but `_target_`, `_partial_` and
    `name` (passed too when the target has a `name` argument). `supplied`: the arguments the
    builder fills in itself, each with where it comes from; `read_here`: the group's keys that the
    builder reads instead of the target (left out of `cfg`; named among the valid keys).
    `first_supplied`: the target's first argument is given at fit time (the parameters, the
    optimizer), not by a key."""
    kwargs = {k: v for k, v in cfg.items() if k not in (*INSTANTIATE_KEYS, "name")}
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin): the call itself will say
        return kwargs
    clash = sorted(kwargs.keys() & supplied.keys())
    if clash:
        key = clash[0]
        raise ConfigError(
            f"{full_key(group)}.{key}={kwargs[key]!r} cannot be set: bertlab passes {key} itself ({supplied[key]}); drop it"
        )
    if "name" in parameters:
        kwargs["name"] = cfg.get("name")
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return kwargs
    first = next(iter(parameters), None) if first_supplied else None  # the parameters / the optimizer
    takes = [
        k
        for k, p in parameters.items()
        if k not in (first, "name", *supplied) and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    unknown = sorted(kwargs.keys() - {"name", *takes})
    if unknown:
        valid = ["name", *sorted([*read_here, *takes])]
        given = ", ".join(f"{full_key(group)}.{k}={kwargs[k]!r}" for k in unknown)
        near = [m for k in unknown for m in difflib.get_close_matches(k, valid, n=1, cutoff=0.6)]
        hint = f"did you mean {', '.join(f'{full_key(group)}.{m}' for m in near)}? " if near else ""
        raise ConfigError(
            f"{group} has unknown key(s) {unknown} ({given}): {full_key(group)}._target_={cfg['_target_']} takes no such "
            f"argument; valid: {', '.join(valid)}; {hint}fix the spelling or drop the key"
        )
    return kwargs


def call(group: str, cfg: Mapping, kwargs: dict, *args, **supplied):
    """`cfg._target_(*args, **supplied, **kwargs)`, through hydra's instantiate (so a kwarg may
    itself be a `_target_` node); a value the target refuses is a ConfigError naming the target."""
    try:
        factory = instantiate({"_target_": cfg["_target_"], "_partial_": True, **kwargs}, _convert_="all")
        return factory(*args, **supplied)
    except ConfigError:
        raise
    except (InstantiationException, TypeError, ValueError) as err:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "name")
        raise ConfigError(
            f"{full_key(group)}._target_={cfg['_target_']} refused its arguments ({given}): {type(err).__name__}: {err}; "
            f"fix the value it names in the {group} config"
        ) from None
