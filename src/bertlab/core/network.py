"""Is a server reachable from here? One quick probe before a client that would otherwise wait.

On a compute node without network, W&B's `init` waits 90 s (its init_timeout) and then fails with
a traceback, and the Hugging Face hub retries every request with backoff for about 30 s before
failing. One HTTP request with a short deadline tells us first, and the caller switches to its
offline mode (W&B offline logging, the hub's local cache).
"""

from __future__ import annotations

import functools
import os
import ssl
import sys
import threading
import urllib.error
import urllib.request

from bertlab.core.errors import ConfigError
from bertlab.core.lines import say

TIMEOUT_ENV = "BERTLAB_PROBE_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 5.0


def probe_timeout() -> float:
    value = os.environ.get(TIMEOUT_ENV, "")
    if not value:
        return DEFAULT_TIMEOUT_S
    try:
        timeout = float(value)
    except ValueError:
        timeout = 0.0
    if not timeout > 0:  # also NaN
        raise ConfigError(
            f"{TIMEOUT_ENV}={value} is invalid; give the probe's deadline in seconds, > 0 "
            f"(default {DEFAULT_TIMEOUT_S:g})."
        )
    return timeout


@functools.cache  # once per URL and process: the jobs of a multirun share the verdict
def unreachable(url: str) -> str | None:
    """None when a server answers at `url`, else why not, in a few words.

    Any HTTP answer counts, an error status too (a HEAD on an API root is often 404 or 405): the
    question is only whether the client would hear back. The request runs in a daemon thread so
    that the deadline bounds everything, name resolution included, which urllib's own timeout
    does not; a thread still stuck after it is abandoned. urllib honours HTTPS_PROXY / NO_PROXY
    like the clients themselves.
    """
    timeout = probe_timeout()
    outcome: list[str | None] = []

    def request() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
            outcome.append(None)
        except urllib.error.HTTPError:  # it answered
            outcome.append(None)
        except urllib.error.URLError as err:
            # a certificate the stdlib does not trust: a server answered (the client may use
            # other CA bundles), so leave the verdict to the client
            is_tls = isinstance(err.reason, ssl.SSLError)
            outcome.append(None if is_tls else _reason(err.reason, timeout))
        except Exception as err:
            outcome.append(_reason(err, timeout))

    thread = threading.Thread(target=request, name=f"probe {url}", daemon=True)
    thread.start()
    thread.join(timeout + 1)  # the socket timeout fires first, unless name resolution hangs
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def _reason(err: object, timeout: float) -> str:
    if isinstance(err, TimeoutError):
        return f"no answer within {timeout:g} s"
    text = str(err).strip() or type(err).__name__
    return text.removeprefix("<urlopen error ").removesuffix(">")


HUB_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def use_hub_offline_if_unreachable() -> None:
    """Before the hub is asked for a model or a dataset: when its endpoint (HF_ENDPOINT, else
    huggingface.co) does not answer, switch this process to the hub's offline mode, so that a
    model or dataset in the local HF cache still loads and anything else fails at once with the
    caller's message (instead of after the clients' retries).

    huggingface_hub and datasets read HF_HUB_OFFLINE when they are imported (transformers imports
    huggingface_hub with this module's callers), so their constants are set as well as the
    environment, which covers modules imported later and child processes.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return
    why = unreachable(constants.ENDPOINT)
    if why is None:
        return
    say(
        f"Hugging Face hub: {constants.ENDPOINT} is unreachable ({why}); working offline (HF_HUB_OFFLINE=1): "
        "only local folders and the local HF cache are used."
    )
    os.environ.update(dict.fromkeys(HUB_OFFLINE_VARS, "1"))
    constants.HF_HUB_OFFLINE = True
    if (datasets_config := sys.modules.get("datasets.config")) is not None:
        datasets_config.HF_HUB_OFFLINE = datasets_config.HF_DATASETS_OFFLINE = True
