"""Named `_target_` entries: the `callbacks` and `logger` dicts (conf/callbacks/, conf/logger/).

Each entry of `callbacks` (and of `logger`) names a class or function in `_target_` and gives its
keyword arguments as keys, as Hydra's `instantiate` reads them (lightning-hydra-template's
`instantiate_callbacks` / `instantiate_loggers`):

    early_stop:                                   # +callbacks.early_stop._target_=... on the command line
      _target_: lightning.pytorch.callbacks.EarlyStopping
      monitor: val/accuracy
      mode: max

An entry with `_partial_: true` is called at build time with the run's things it asks for by
argument name (the `context`: the model, run_dir, the select metric, ... for a callback; the run
folder, run name, group, tags, ... for a logger); bertlab's own entries are such factories
(bertlab/callbacks/entries.py; bertlab/loggers/choice.py names the loggers'). An entry set to null (`callbacks.x=null`,
`~callbacks.x`) is dropped. A factory may return one object, a list of them, or None (nothing:
e.g. prior weight decay when prior_wd is 0).

Every entry is checked before data or model load (check_entries): no `_target_`, a `_target_`
that does not import, a key its target does not take, or an argument it needs that nobody gives
is one ConfigError naming the key, the value and the fix (the optimizer group's helpers,
core/target.py).
"""

import inspect
from collections.abc import Callable, Mapping

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from bertlab.core.errors import ConfigError
from bertlab.core.target import locate, plain, target_kwargs


def entries(node) -> dict:
    """The entries that are on, in order: every key whose value is not null."""
    if node is None:
        return {}
    return {str(name): entry for name, entry in node.items() if entry is not None}


def _parameters(target: Callable) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(target).parameters)
    except (TypeError, ValueError):  # no signature to read (a builtin)
        return {}


def accepted(target: Callable, context: Mapping) -> dict:
    """The context values `target` takes by argument name (all of them when it takes **kwargs)."""
    parameters = _parameters(target)
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return dict(context)
    return {k: v for k, v in context.items() if k in parameters}


def check_entry(key: str, entry, context: Mapping[str, str], what: str) -> tuple[Callable, dict, bool]:
    """(target, its keyword arguments from the entry's keys, whether it is `_partial_`) of the entry
    at `key` (`callbacks.early_stop`); `context`: the arguments a `_partial_` entry is given at build
    time, each with what it is (for the messages). Raises ConfigError."""
    if not isinstance(entry, (DictConfig, Mapping)):
        raise ConfigError(
            f"{key}={entry!r} is invalid; valid: an entry with a _target_ (+{key}._target_=<the dotted import "
            f"path of {what}>, its arguments as +{key}.<argument>=...), or null to drop it ({key}=null)"
        )
    if "_target_" not in entry:
        given = OmegaConf.to_container(entry, resolve=False) if isinstance(entry, DictConfig) else dict(entry)
        raise ConfigError(
            f"{key}={given} has no _target_; add +{key}._target_=<the dotted import path of {what}> "
            f"(e.g. in its yaml), or drop the entry: ~{key}"
        )
    target = locate(key, entry, what, partial_only=False)
    partial = entry.get("_partial_", False)
    supplied = dict(context) if partial else {}
    values = plain(entry)
    kwargs = target_kwargs(key, values, target, supplied, first_supplied=False)
    parameters = _parameters(target)
    missing = [
        name
        for name, p in parameters.items()
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and name not in kwargs
        and name not in supplied
    ]
    if missing:
        offered = f"; bertlab gives a `_partial_: true` entry, by name: {', '.join(context)}" if context else ""
        raise ConfigError(
            f"{key}._target_={values['_target_']} needs {', '.join(missing)}, which {key} does not give: add "
            f"{' '.join(f'+{key}.{m}=<value>' for m in missing)}{offered}"
        )
    return target, kwargs, bool(partial)


def check_entries(section: str, node, context: Mapping[str, str], what: str) -> None:
    """Every entry of `section` (`callbacks`, `logger`), before the run starts."""
    if node is not None and not isinstance(node, (DictConfig, Mapping)):
        raise ConfigError(f"{section}={node!r} is invalid; valid: named entries, each with a _target_ ({what})")
    for name, entry in entries(node).items():
        check_entry(f"{section}.{name}", entry, context, what)


def build_entry(key: str, entry, context: Mapping, context_doc: Mapping[str, str], what: str) -> list:
    """The objects the entry at `key` builds: a list (empty when its factory returns None)."""
    target, kwargs, partial = check_entry(key, entry, context_doc, what)
    supplied = accepted(target, context) if partial else {}
    try:  # as core/target.py `call`, whose `cfg` argument would clash with the context's
        factory = instantiate({"_target_": entry["_target_"], "_partial_": True, **kwargs}, _convert_="all")
        built = factory(**supplied)
    except ConfigError:
        raise
    except (InstantiationException, TypeError, ValueError) as err:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise ConfigError(
            f"{key}._target_={entry['_target_']} refused its arguments ({given}): {type(err).__name__}: {err}; "
            f"fix the value it names in {key}"
        ) from None
    if built is None:
        return []
    return list(built) if isinstance(built, (list, tuple)) else [built]
