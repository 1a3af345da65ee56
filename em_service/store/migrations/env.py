"""Alembic environment: run migrations on the connection :func:`em_service.store.migrate.upgrade`
passes in, or on ``sqlalchemy.url`` when Alembic is run by hand."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from em_service.store.models import Base
from em_service.store.partitions import include_name

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from em_service.store.db import Store

    store = Store(config.get_main_option("sqlalchemy.url") or "")
    try:
        with store.engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
            _run(conn)
    finally:
        store.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
