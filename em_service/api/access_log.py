"""The API's access log never records query strings: they carry offender ids, time ranges,
purposes and crime references of location reads, and sometimes a token a client put there.

:class:`StripQuery` rewrites uvicorn's access records (``client, method, path, version,
status``) to the path alone; :func:`install` puts it on uvicorn's access logger, whose records
then go to the service's log handler (:mod:`em_service.logs`).
"""

from __future__ import annotations

import logging


class StripQuery(logging.Filter):
    """Drop everything from ``?`` in the request target of an access log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = args[2].split("?", 1)[0]
            record.args = (*args[:2], path, *args[3:])
        return True


def install() -> None:
    """Put :class:`StripQuery` on uvicorn's access logger (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, StripQuery) for f in access.filters):
        access.addFilter(StripQuery())
