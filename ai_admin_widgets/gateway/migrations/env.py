"""Alembic's environment: run on the connection :func:`~ai_admin_widgets.gateway.db.upgrade` hands over.

Only online migrations, in the caller's transaction, with the gateway's own version table
(``ai_gateway_alembic_version``), so a database shared with JupyterHub keeps its ``alembic_version``.
Imported other than by Alembic (outside its environment context), it does nothing.
"""

from __future__ import annotations

from alembic import context

from ai_admin_widgets.gateway.db import VERSION_TABLE, metadata


def run_migrations() -> None:
    """Run the migrations Alembic selected on the connection in ``config.attributes``."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("the gateway's migrations run through ai-admin gateway upgrade-db, not the alembic command")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite changes a table by copying it
    )
    with context.begin_transaction():
        context.run_migrations()


if getattr(context, "config", None) is not None:  # loaded by Alembic, inside its environment context
    run_migrations()
