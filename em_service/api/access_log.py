"""The API's access log never records query strings: they carry offender ids, time ranges,
purposes and crime references of location reads, and sometimes a token a client put there.

:class:`StripQuery` rewrites uvicorn's access records (``client, method, path, version,
status``) to the path alone; :func:`log_config` is uvicorn's logging config with it installed.
"""

from __future__ import annotations

import copy
import logging
from typing import Any


class StripQuery(logging.Filter):
    """Drop everything from ``?`` in the request target of an access log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = args[2].split("?", 1)[0]
            record.args = (*args[:2], path, *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """Return uvicorn's default logging config with :class:`StripQuery` on the access log."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["strip_query"] = {"()": f"{__name__}.StripQuery"}
    config["handlers"]["access"]["filters"] = ["strip_query"]
    return config
