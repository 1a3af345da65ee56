"""Storage: trail archive, alerts with their lifecycle, offenders, principals, audit, retention.

SQLAlchemy 2 over SQLite (WAL) by default; the SQL is portable so PostgreSQL can follow. The only
SQLite-specific code is engine setup (:mod:`.db`, pragmas and transaction modes) and the
append-only triggers in the first migration; the spatio-temporal index lives in
:mod:`.spatial_index` alone. Store functions take a ``Session`` and keyword arguments; callers
choose the transaction with :meth:`Store.read` or :meth:`Store.write`.
"""

from em_service.store.db import Store, open_store

__all__ = ["Store", "open_store"]
