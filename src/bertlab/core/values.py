"""The config rules' shared primitives: what counts as an integer and as a number in a config value,
and the checks built on them that raise the one message shape every rule uses,
`{key}={value} is invalid: {why}.`

They live here, in core/, because every package's rules call them (data/,
heads/, methods/, optim/, pretrain/, setfit/, run/, run/checks.py): this module imports only the
error type, so any of them may import it without a cycle. A YAML `true` is a bool, which Python counts
as an int: one place says it is neither. A caller that has its own wording passes `why`, so a rule's
message stays its own while the test of the value is the shared one; `key` is the key's full name
(`pretrain.lr`, not `lr`), so the message is right where it is raised.
"""

import contextlib
import contextvars
import math

from bertlab.core.errors import ConfigError


def is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value, finite: bool = False) -> bool:
    """An int or float (never a bool); `finite`: nan and inf are not numbers either."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return not finite or math.isfinite(value)


def is_count(value, minimum: int = 1) -> bool:
    """An integer (never a bool) >= `minimum`: the test of check_count, for a rule worded otherwise."""
    return is_integer(value) and value >= minimum


def invalid(key: str, value, why: str) -> ConfigError:
    """The message of every rule below: `{key}={value} is invalid: {why}.`"""
    return ConfigError(f"{key}={value} is invalid: {why}.")


def check_flag(value, key: str, also=()) -> bool:
    """Booleans only (or one of `also`): `resume=no` would be the string "no", and a non-empty
    string is true."""
    if not isinstance(value, bool) and value not in also:
        valid = ", ".join(["true", "false", *map(str, also)])
        raise ConfigError(f"{key}={value} is invalid; valid: {valid}.")
    return value


def check_choice(value, key: str, valid) -> None:
    """One of `valid`: `{key}={value} is invalid; valid: a, b.`"""
    if value not in valid:
        raise ConfigError(f"{key}={value} is invalid; valid: {', '.join(map(str, valid))}.")


def check_count(value, key: str, what: str = "", minimum: int = 1, allow=(), why: str | None = None):
    """An integer >= `minimum` (a bool is not one), or one of `allow` (e.g. None, -1); the message
    says `it must be an integer >= {minimum} ({what})` unless `why` words it otherwise."""
    if value in allow and not isinstance(value, bool):
        return value
    if not is_count(value, minimum):
        if why is None:
            why = f"it must be an integer >= {minimum}" + (f" ({what})" if what else "")
        raise invalid(key, value, why)
    return value


def check_number(
    value,
    key: str,
    why: str,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
    allow=(),
):
    """An int or float (never a bool) in the range from `low` to `high` (`*_open`: the bound itself
    excluded), or one of `allow` (e.g. None). nan is in no range; `finite`: inf is refused too (else
    only the bounds decide)."""
    if value in allow and not isinstance(value, bool):
        return value
    ok = is_number(value, finite=finite) and (
        (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
    )
    if not ok:
        raise invalid(key, value, why)
    return value


def check_positive(value, key: str, why: str = "it must be a positive number", finite: bool = True):
    """A number > 0 (inf too where `finite` is false)."""
    return check_number(value, key, why, low=0, low_open=True, finite=finite)


def check_probability(value, key: str, why: str, high_open: bool = True):
    """A number in [0, 1) (`high_open` false: [0, 1])."""
    return check_number(value, key, why, low=0, high=1, high_open=high_open)


MAX_SEED = 2**32 - 1  # numpy's seed range, which Lightning's seed_everything enforces


def check_seed(value, key: str, why: str = "it must be an integer from 0 to 2**32 - 1"):
    """An integer in numpy's seed range (0 is a seed)."""
    if not is_integer(value) or not 0 <= value <= MAX_SEED:
        raise invalid(key, value, why)
    return value


# The optimizer and schedule groups are fine-tuning's (`optimizer.lr`) and, with the same builders
# (optim/), each further pre-training stage's (`pretrain.optimizer.lr`): the builders name their keys
# through full_key, and the stage calls them within keys_under("pretrain"), so that the message
# names the stage's key where it is raised. A context variable, not an argument, because
# core/target.py calls the groups' `_target_` (adam_family, or a user's own) with the config's
# arguments only.
_UNDER: contextvars.ContextVar[str] = contextvars.ContextVar("bertlab_keys_under", default="")


@contextlib.contextmanager
def keys_under(node: str):
    """Within: full_key("optimizer.lr") is f"{node}.optimizer.lr"."""
    token = _UNDER.set(f"{node}.")
    try:
        yield
    finally:
        _UNDER.reset(token)


def full_key(key: str) -> str:
    """`key` (a key of the optimizer or schedule group, or the group itself) as the config names it here."""
    return _UNDER.get() + key
