"""Check Jupyter AI against a practice AI gateway, by hand (not part of `make test`; the README says why).

Usage, in an environment with ai-admin-widgets and Jupyter AI installed:

    python tools/check_jupyter_ai.py [--gateway-python PYTHON]

It starts `ai-admin gateway practice` with PYTHON (default: this one; it needs the hub extra), saves a
practice OpenAI integration as the practice admin, then, with the analyst's token as the API key and the
gateway's /v1 as the base URL, drives what it finds:

* Jupyter AI 2 (jupyter_ai_magics): the "OpenAI (general interface)" provider (invoke, stream), the
  OpenAI embeddings provider, and the %%ai magic;
* Jupyter AI 3's Jupyternaut (jupyter_ai_jupyternaut): its ChatLiteLLM model class (invoke, stream, astream).

Each check prints one line, "ok" or "FAILED", with the sandbox's answer or the error (tokens masked).
Exit codes: 0 every check passed, 1 one failed, 2 no Jupyter AI found. Contacts nothing but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any


def _checks_v2(url: str, token: str) -> list[tuple[str, Callable[[], str]]]:
    from jupyter_ai_magics.partner_providers.openai import ChatOpenAICustomProvider, OpenAIEmbeddingsProvider

    chat = ChatOpenAICustomProvider(model_id="gpt-4o", openai_api_base=url, openai_api_key=token)
    # Without check_embedding_ctx_length=False, langchain downloads tiktoken's tables before each call.
    embeddings = OpenAIEmbeddingsProvider(
        model_id="text-embedding-3-small", openai_api_base=url, openai_api_key=token, check_embedding_ctx_length=False
    )

    def magic() -> str:
        from IPython.core.interactiveshell import InteractiveShell

        os.environ["OPENAI_API_KEY"], os.environ["OPENAI_API_BASE"] = token, url
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "jupyter_ai_magics")
        return str(shell.run_cell_magic("ai", "openai-chat-custom:gpt-4o -f text", "Hello from the magic"))

    return [
        ("Jupyter AI 2: openai-chat-custom, invoke", lambda: str(chat.invoke("What is a p-value?").content)),
        ("Jupyter AI 2: openai-chat-custom, stream", lambda: "".join(str(c.content) for c in chat.stream("Count"))),
        ("Jupyter AI 2: openai embeddings", lambda: f"{len(embeddings.embed_documents(['a', 'b']))} vectors"),
        ("Jupyter AI 2: %%ai openai-chat-custom:gpt-4o", magic),
    ]


def _checks_v3(url: str, token: str) -> list[tuple[str, Callable[[], str]]]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM would fetch its price list
    from jupyter_ai_jupyternaut.jupyternaut.chat_models import ChatLiteLLM

    model = ChatLiteLLM(model="openai/gpt-4o", api_base=url, api_key=token, streaming=True)

    async def astream() -> str:
        return "".join([str(chunk.content) async for chunk in model.astream("Count")])

    return [
        ("Jupyter AI 3: Jupyternaut's ChatLiteLLM, invoke", lambda: str(model.invoke("What is a p-value?").content)),
        (
            "Jupyter AI 3: Jupyternaut's ChatLiteLLM, stream",
            lambda: "".join(str(c.content) for c in model.stream("Count")),
        ),
        ("Jupyter AI 3: Jupyternaut's ChatLiteLLM, astream", lambda: asyncio.run(astream())),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway-python", default=sys.executable, help="the Python that runs the practice gateway")
    arguments = parser.parse_args()

    import importlib.util

    import ai_admin_widgets as aiw
    from ai_admin_widgets.client import GatewaySettings

    makers = [
        make
        for module, make in (("jupyter_ai_magics", _checks_v2), ("jupyter_ai_jupyternaut", _checks_v3))
        if importlib.util.find_spec(module) is not None
    ]
    if not makers:
        print("Neither Jupyter AI 2 (jupyter_ai_magics) nor Jupyternaut (jupyter_ai_jupyternaut) is installed here.")
        return 2
    environment = {name: value for name, value in os.environ.items() if not name.startswith("JUPYTERHUB_")}
    practice = subprocess.Popen(  # noqa: S603 (the Python the caller named, running this package)
        [arguments.gateway_python, "-m", "ai_admin_widgets", "gateway", "practice"],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert practice.stdout is not None
        first: dict[str, Any] = json.loads(practice.stdout.readline())
        url, tokens = first["gateway_url"], first["tokens"]
        admin = GatewaySettings(url, token=tokens["admin"])
        # The sandbox takes any key that starts with sk-sandbox-.
        admin.save(aiw.OpenAIIntegration(api_key=f"sk-sandbox-{secrets.token_hex(16)}", base_url=admin.openai_base_url))
        checks = [check for make in makers for check in make(url + "/v1", tokens["analyst"])]
        failed = 0
        for name, check in checks:
            try:
                answer = check()
                ok = answer.startswith("Sandbox reply to:") or answer.endswith("vectors")
            except Exception as error:
                answer, ok = f"{type(error).__name__}: {error}", False
            for secret in tokens.values():
                answer = answer.replace(secret, "<token>")
            failed += not ok
            print(f"{'ok' if ok else 'FAILED'}: {name}: {answer.strip()[:200]}")
        return 1 if failed else 0
    finally:
        practice.send_signal(signal.SIGTERM)
        practice.wait(30)


if __name__ == "__main__":
    sys.exit(main())
