"""The AI gateway: the JupyterHub-managed service that holds the organization's AI Settings and keys.

Users' servers never hold a key: the panel, ``ai-admin`` and ``ai`` talk to the gateway
(:class:`~ai_admin_widgets.client.GatewaySettings`, chosen when ``$AI_ADMIN_GATEWAY_URL`` is
set), and the openai SDK, Jupyter AI or LangChain talk to its OpenAI-compatible ``/v1``. Every
request carries the caller's JupyterHub token, resolved with HubAuth (:mod:`.auth`).

* :mod:`.app`: the tornado application and the admin API (the Settings interface over HTTP);
* :mod:`.v1`: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``;
* :mod:`.addresses`: where it may connect (no metadata, link-local or unlisted private addresses; no DNS rebinding);
* :mod:`.serve`: ``ai-admin gateway serve`` (the managed service);
* :mod:`.practice`: ``ai-admin gateway practice`` (a gateway, a sandbox and a hub stand-in);
* :mod:`.hubconfig`: ``ai-admin gateway hub-config`` (the ``jupyterhub_config.py`` snippet).
* :mod:`.report`: the usage report (``api/usage-report``, ``ai-admin usage``, the panel's Usage region);
* :mod:`.health`: ``health/live``, ``health/ready`` and the periodic re-authentication;
* :mod:`.metrics`: Prometheus ``metrics``.

Needs the ``hub`` extra: ``pip install 'ai-admin-widgets[hub]'`` (jupyterhub, keyrings.cryptfile).
"""

from __future__ import annotations

__all__ = ["CONFIGURE_SCOPE", "USE_SCOPE"]

CONFIGURE_SCOPE = "custom:ai-admin:configure"
USE_SCOPE = "custom:ai-admin:use"
