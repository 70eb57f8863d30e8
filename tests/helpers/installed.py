"""`needs(package)`: a file's tests skip, with the reason, where an optional package is not installed.

Not pytest.importorskip at a module's top: that imports the package while the tests are collected,
in every worker and for `-m "not slow"` too (setfit 1.8 s, accelerate 2.0 s on 2 cores), even
when none of the file's tests runs. The package is only looked up here; a test imports it itself.
"""

from importlib.util import find_spec

import pytest


def needs(package: str, reason: str | None = None) -> pytest.MarkDecorator:
    return pytest.mark.skipif(find_spec(package) is None, reason=reason or f"{package} is not installed")
