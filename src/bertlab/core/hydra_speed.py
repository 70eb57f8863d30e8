"""Two fixes to the speed of a Hydra composition: the same config, composed in about 60% of the CPU.

A run composes its config twice before its first step (the key check, then Hydra's run: 0.2-0.25 s
each on the 2-core CPU, the largest part of its start-up past the imports), and the test suite
composes thousands of times. Both fixes are to libraries that have no setting for them, so
`speed_up_hydra` replaces one function of each, once per process; tests/unit/test_hydra_speed.py
checks that the configs and the errors are the same with and without them.

1. YAML on libyaml's C parser. OmegaConf (hence every config file Hydra reads, some 20-60 per
   composition) parses with PyYAML's pure-Python `SafeLoader`, even where PyYAML was built with
   libyaml. The loader here is built from OmegaConf's own: its implicit resolvers (YAML 1.2
   floats, no timestamps) and constructors (pathlib.Path) are copied as they are, its duplicate-key
   check is repeated (OmegaConf's calls `super()` bound to its own class); only the parser differs.
   Errors still name the file, line and column. Composition: 0.25 -> 0.20 s of CPU.
2. Hydra's map of the known choices, built when it is used. For every config that has a defaults
   list (about 30 per composition, most of them Hydra's own), Hydra builds an OmegaConf config of
   every choice known so far, which only an interpolated default (`- db: ${server}_db`) reads;
   ours have none. `_create_interpolation_map` then returns a thunk, and the one function that
   reads the map builds it on first use, before the subtrees that would change it, as Hydra does.
   Composition: 0.20 -> 0.15 s of CPU.

Both measured with one composition of `experiment=paper_full method=standard task=rte`, medians of
15 interleaved repeats, 2-core CPU, 2026-12-07 (hydra-core 1.3.8, omegaconf 2.3.1, PyYAML 6.0.4).
"""

from __future__ import annotations

import hydra._internal.defaults_list as defaults_list
import yaml
from hydra.core.default_element import InputDefault
from omegaconf._utils import get_yaml_loader as omegaconf_loader

# the libraries' own, kept before the swap
HYDRA_CHOICES_MAP = defaults_list._create_interpolation_map
HYDRA_RESOLVE = InputDefault._resolve_interpolation_impl
# (owner, attribute, the library's own) of each function speed_up_hydra replaced: empty until it
# runs; the tests put the libraries' own back from it to compose both ways
SWAPPED: list[tuple[object, str, object]] = []


def _libyaml_loader(base: type) -> type:
    """OmegaConf's loader class `base` on libyaml's parser."""

    class OmegaConfCLoader(yaml.CSafeLoader):
        def construct_mapping(self, node, deep=False):
            keys = set()
            for key_node, _ in node.value:
                if key_node.tag != yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG:
                    continue
                if key_node.value in keys:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key_node.value}",
                        key_node.start_mark,
                    )
                keys.add(key_node.value)
            return yaml.constructor.SafeConstructor.construct_mapping(self, node, deep=deep)

    OmegaConfCLoader.yaml_implicit_resolvers = base.yaml_implicit_resolvers
    OmegaConfCLoader.yaml_constructors = base.yaml_constructors
    return OmegaConfCLoader


class _ChoicesWhenRead:
    """Hydra's `_create_interpolation_map(...)`, built on its first read."""

    def __init__(self, build, args: tuple):
        self._build, self._args, self._map = build, args, None

    def get(self):
        if self._map is None:
            self._map = self._build(*self._args)
        return self._map


def _resolve_interpolation(self, known_choices, val):
    if isinstance(known_choices, _ChoicesWhenRead):
        known_choices = known_choices.get()
    return HYDRA_RESOLVE(self, known_choices, val)


def speed_up_hydra() -> None:
    """Install both fixes in this process (idempotent): before the first composition."""
    if SWAPPED:
        return
    ours = [
        (defaults_list, "_create_interpolation_map", lambda *args: _ChoicesWhenRead(HYDRA_CHOICES_MAP, args)),
        (InputDefault, "_resolve_interpolation_impl", _resolve_interpolation),
    ]
    if getattr(yaml, "__with_libyaml__", False):  # a PyYAML without libyaml keeps OmegaConf's loader
        import omegaconf._utils
        import omegaconf.basecontainer

        loader = _libyaml_loader(omegaconf_loader())
        ours += [(module, "get_yaml_loader", lambda: loader) for module in (omegaconf._utils, omegaconf.basecontainer)]
    for owner, name, function in ours:
        SWAPPED.append((owner, name, getattr(owner, name)))
        setattr(owner, name, function)
