"""The gateway database's Alembic migrations, run by :func:`ai_admin_widgets.gateway.db.upgrade` (no alembic.ini).

A new migration: a module in ``versions/`` whose ``down_revision`` is the current head (the template
is ``script.py.mako``); it names its tables and columns itself and never imports today's
:data:`~ai_admin_widgets.gateway.db.metadata`, which will have moved on when it runs.
"""
