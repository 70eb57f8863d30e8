"""What counts as an integer and as a number in a config value: the two tests every config rule
uses (a YAML `true` is a bool, which Python counts as an int; one place says it is neither)."""

import math


def is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value, finite: bool = False) -> bool:
    """An int or float (never a bool); `finite`: nan and inf are not numbers either."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return not finite or math.isfinite(value)
