"""Refuse command-line keys that nothing reads, before Hydra composes the config.

Hydra accepts `+reinitt=3` (and `+trainer.max_epoch=5`, `++data.batchsize=8`, ...) as a new key
that no code ever reads, so a sweep over it compares runs that are all the same. For a plain
`reinitt=3` its own message suggests exactly that wrong fix ("use +reinitt=3"). This module
checks the command line first and answers both with one message: the key, its value, the
nearest valid key and the command to use instead.

The valid keys are those of the config composed from the chosen group options alone (the
defaults list of conf/train.yaml with the command line's `task=`, `model=`, `experiment=`, ...
choices, and none of its `key=value` overrides). So a key an option adds is valid exactly when
that option is chosen: `task.columns` with task=csv, `schedule.power` with schedule=polynomial,
and not with schedule=linear (where nothing would read it). A swept group (`-m task=rte,csv`)
is composed once per option, and a key must exist under every one of them. Keys are checked as
written: adding (`+`, `++`), setting and deleting (`~`) a key the config does not have are all
refused, and so is deleting one it has (the code reads every key of the config). `hydra.*` and
`hydra/...` overrides are Hydra's own and left to Hydra, as are overrides it cannot parse or
group options it cannot find (its messages for those are clear).

`callbacks` and `logger` are dicts of named `_target_` entries (core/entries.py): there `+` may add
an entry (`+callbacks.early_stop._target_=...`) or an argument of one (`+callbacks.early_stop.patience=3`,
also under an entry the config has), and `~callbacks.throughput` drops an entry; what is added is
checked against the entry's target before the run starts (a key it does not take is refused there,
naming its valid keys). A key of an entry set without `+`, or an entry name set without `+`, is
checked here as any other (`callbacks.throughpt=null`: did you mean callbacks.throughput?).

The composition is not thrown away (`Composition`): its `hydra.mode` is what Hydra composes the
whole config a second time for, and its logger says whether W&B is imported first (run/entry.py;
start-up, docs/speed.md). So the command line's group choices are composed even without a key
override to check.
"""

import difflib
import sys
from pathlib import Path
from typing import NamedTuple

from hydra import compose, initialize_config_dir

# Private, kept: Hydra's own argparse parser, the one @hydra.main reads the command line with
# (--config-dir, -m, --help, ...). Hydra 1.3 has no public way to get it, and a parser of ours
# could disagree with Hydra's on a flag; tests/e2e/test_config_keys_e2e.py runs it through train.py.
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bertlab.core.errors import ConfigError
from bertlab.core.extras import check_extras, command_line_options
from bertlab.core.hydra_speed import speed_up_hydra

_ABSENT = object()
# check_overrides' answer when it composed nothing (Hydra will report the command line itself):
# the mode is then Hydra's to find
NOT_COMPOSED = object()


class Composition(NamedTuple):
    """What the check composed: the command line's group choices (the first option of a swept group)."""

    mode: object  # hydra.mode: RUN, MULTIRUN or None, as Hydra.get_mode reads it
    config: dict  # without Hydra's node, unresolved, without the key overrides
    key_overrides: list[str]  # their keys (`logger.wandb.mode`, ...), as written less +, ++ and ~


# dicts of named `_target_` entries (core/entries.py): a command line may add an entry of its own
ENTRY_SECTIONS = ("callbacks", "logger")


def _entry_override(override, key: str, config: dict) -> bool:
    """Whether `override` adds a named entry or an argument of one, with + or ++
    (`+callbacks.early_stop._target_=...`, `+callbacks.early_stop.patience=5`), or drops an
    entry (`~callbacks.throughput`). What is added is checked against the entry's target before the
    run (core/entries.py: a key its target does not take is a ConfigError there): importing the
    targets here would cost the check seconds. Setting an entry's key without + is checked here
    like any other key (a typo is refused), and so is removing a key inside an entry."""
    section, _, rest = key.partition(".")
    if section not in ENTRY_SECTIONS or not rest or not isinstance(config.get(section, {}), (dict, type(None))):
        return False
    name = rest.split(".")[0]
    if override.is_delete():
        return rest == name and _lookup(config, f"{section}.{name}") is not _ABSENT
    entry = _lookup(config, f"{section}.{name}")
    adding = override.is_add() or override.is_force_add()
    return adding and (
        entry is _ABSENT or (rest != name and isinstance(entry, dict) and _lookup(config, key) is _ABSENT)
    )


def _is_hydras(key: str) -> bool:
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def _lookup(node, dotted: str):
    """The value at a dotted key of a plain (unresolved) container, or _ABSENT."""
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _ABSENT
    return node


def _option_with_key(config_loader, group: str, rest: str) -> list[str]:
    """The options of `group` whose own file defines `rest` (for the hint in the message)."""
    found = []
    for option in config_loader.get_group_options(group):
        try:
            node = config_loader.repository.load_config(f"{group}/{option}")
        except (HydraException, OmegaConfBaseException, OSError):
            continue
        if node is not None and _lookup(OmegaConf.to_container(node.config, resolve=False), rest) is not _ABSENT:
            found.append(option)
    return found


def _message(override, key: str, config: dict, chosen: str, config_loader, groups: dict[str, str]) -> str:
    value = "" if override.is_delete() else "=" + override.input_line.split("=", 1)[1]  # a sweep too
    written = override.input_line
    if override.is_delete():
        if _lookup(config, key) is not _ABSENT:
            return (
                f"{written}: removing a config key is not supported (the code reads every key of the "
                f"config); set it instead: {key}=<value>."
            )
        return f"{written}: there is no key '{key}' to delete{chosen}."
    head = f"{written}: unknown config key '{key}'{chosen}; nothing reads it, so the run would silently ignore it."
    group, _, rest = key.partition(".")
    if rest and group in groups:
        others = [o for o in _option_with_key(config_loader, group, rest) if o != groups[group]]
        if others:
            return (
                f"{head} It is a key of {group}={'/'.join(others)}, not of {group}={groups[group]}: "
                f"add {group}={others[0]} or drop {key}{value}."
            )
    if group in ENTRY_SECTIONS and rest and _lookup(config, f"{group}.{rest.split('.')[0]}") is _ABSENT:
        entry = f"{group}.{rest.split('.')[0]}"
        present = _lookup(config, group)
        known = [str(k) for k in present] if isinstance(present, dict) else []
        near = difflib.get_close_matches(rest.split(".")[0], known, n=1, cutoff=0.6)
        hint = f"Did you mean {group}.{near[0]}? " if near else ""
        return (
            f"{written}: {entry} is no {group} entry{chosen} (its entries: {', '.join(sorted(known)) or 'none'}). "
            f"{hint}A new entry is added with +: +{key}{value} (and +{entry}._target_=... naming its class)."
        )
    if (
        group in ENTRY_SECTIONS
        and len(key.split(".")) == 3
        and isinstance(_lookup(config, key.rsplit(".", 1)[0]), dict)
    ):
        entry = key.rsplit(".", 1)[0]
        valid = ", ".join(sorted(str(k) for k in _lookup(config, entry)))
        return (
            f"{head} {entry}'s keys: {valid}. An argument its _target_ takes that its config does not set "
            f"is added with +: +{key}{value}."
        )
    # the deepest part of the key that exists, and the first name under it that does not
    parts = key.split(".")
    depth = 0
    while depth < len(parts) - 1 and isinstance(_lookup(config, ".".join(parts[: depth + 1])), dict):
        depth += 1
    parent = ".".join(parts[:depth])
    node = _lookup(config, parent) if parent else config
    if not isinstance(node, dict) or parts[depth] in node:
        holder = ".".join(parts[: depth + 1])
        return f"{head} {holder} is a single value, not a group of keys: set {holder}=... instead."
    near = difflib.get_close_matches(parts[depth], [str(k) for k in node], n=1, cutoff=0.6)
    if near:
        fixed = ".".join(parts[:depth] + near + parts[depth + 1 :])
        return f"{head} Did you mean {fixed}? Use {fixed}{value}."
    where = f"under {parent}" if parent else "at the top level"
    return f"{head} Valid keys {where}: {', '.join(sorted(str(k) for k in node))}."


def _group_configs(
    overrides, group_overrides, config_name: str, first_only: bool = False
) -> tuple[list[tuple[dict, dict[str, str], str]], object]:
    """(config, {group: option}, " with group=option" or "") for the configs the keys must exist in:
    the command line's group choices (the first option of a swept group), then each further option
    of a swept group in turn. Composing once per option, not per combination, keeps a sweep over
    several groups at a few seconds; an option's keys come from its own file, whatever the others.
    Also the first composition's `hydra.mode` (RUN, MULTIRUN or None: what a config file or the
    command line's hydra.mode set, which no key override of the app's config can change).
    `first_only`: the first composition alone (no key to check under the other options)."""
    # Hydra's own search-path settings decide where the group options are found; hydra.mode is
    # kept for the mode read from the first composition
    searchpath = [o.input_line for o in overrides if o.key_or_group in ("hydra.searchpath", "hydra.mode")]
    lines = [o.input_line if not o.is_sweep_override() else None for o in group_overrides]
    swept = {i: list(o.sweep_string_iterator()) for i, o in enumerate(group_overrides) if o.is_sweep_override()}
    for i, options in swept.items():
        lines[i] = f"{group_overrides[i].get_key_element()}={options[0]}"

    modes = []

    def composed(choices: list[str]) -> tuple[dict, dict[str, str]]:
        """The config without Hydra's node, and the option chosen for each group."""
        cfg = compose(config_name=config_name, overrides=choices + searchpath, return_hydra_config=True)
        modes.append(cfg.hydra.mode)
        groups = {k: v for k, v in cfg.hydra.runtime.choices.items() if not _is_hydras(k) and v is not None}
        container = OmegaConf.to_container(cfg, resolve=False)
        container.pop("hydra")
        return container, groups

    configs = [(*composed(lines), "")]
    for i, options in swept.items() if not first_only else ():
        element = group_overrides[i].get_key_element()
        for option in options[1:]:
            choices = lines[:i] + [f"{element}={option}"] + lines[i + 1 :]
            configs.append((*composed(choices), f" with {element.lstrip('+~')}={option}"))
    return configs, modes[0]


def check_overrides(arguments: list[str], config_dir: Path, config_name: str = "train"):
    """Raise one ConfigError naming every override whose key the composed config does not have.
    Returns the Composition of the command line's group choices, or NOT_COMPOSED."""
    speed_up_hydra()  # for every composition of the run, this one first (core/hydra_speed.py)
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        config_loader = GlobalHydra.instance().config_loader()
        try:
            overrides = OverridesParser.create(config_loader=config_loader).parse_overrides(arguments)
        except HydraException:
            return NOT_COMPOSED  # Hydra reports a malformed override itself
        # an option whose packages are an extra that is not installed: before Hydra starts anything
        check_extras(command_line_options(overrides))
        group_overrides, key_overrides = [], []
        for override in overrides:
            key = override.key_or_group
            if _is_hydras(key):
                continue
            is_group = override.package is not None or config_loader.repository.group_exists(key)
            (group_overrides if is_group else key_overrides).append(override)
        try:
            configs, mode = _group_configs(overrides, group_overrides, config_name, first_only=not key_overrides)
        except (HydraException, OmegaConfBaseException):
            return NOT_COMPOSED  # an unknown group option or a broken config file: Hydra's own message says which
        problems = []
        for override in key_overrides:
            key = override.key_or_group
            for config, groups, chosen in configs:
                if _entry_override(override, key, config):
                    continue
                if override.is_delete() or _lookup(config, key) is _ABSENT:
                    problems.append(_message(override, key, config, chosen, config_loader, groups))
                    break
        if problems:
            raise ConfigError(" ".join(problems))
        return Composition(mode, configs[0][0], [o.key_or_group.lstrip("+~") for o in key_overrides])


def check_command_line(argv: list[str], config_dir: Path, config_name: str = "train"):
    """Run check_overrides on Hydra's own reading of the command line; print and exit 1 on a bad key.
    Returns check_overrides' Composition, or NOT_COMPOSED when the check composed nothing or
    composed from another folder than Hydra will (--config-path)."""
    args, _ = get_args_parser().parse_known_args(argv)
    if args.help or args.hydra_help or args.info or args.shell_completion or args.experimental_rerun:
        return NOT_COMPOSED
    overrides = list(args.overrides)
    if args.config_dir:  # as Hydra adds --config-dir to its search path
        overrides.append(f"hydra.searchpath=[file://{Path(args.config_dir).resolve()}]")
    try:
        composition = check_overrides(overrides, config_dir, args.config_name or config_name)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    return NOT_COMPOSED if args.config_path is not None else composition
