"""``python -m ai_admin_widgets``: the ``ai-admin`` command line."""

from .cli import main

raise SystemExit(main())
