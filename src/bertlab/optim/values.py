"""The range check of a numeric config value, with the message every optimizer and schedule rule uses."""

import math

from bertlab.core.errors import ConfigError
from bertlab.core.values import full_key


def checked_number(key: str, value, ok, valid: str) -> float:
    """`value` as a float when `ok(value)`, else a ConfigError naming `key` (an optimizer key, by its
    full name: core/values.py full_key), the value and `valid`.
    Numbers written as strings count ("2e-5": YAML 1.1 reads `2e-5` without a dot as a string)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if isinstance(value, bool) or not ok(x):  # nan fails every `ok`
        raise ConfigError(f"{full_key(key)}={value!r} is invalid; valid: {valid}")
    return x
