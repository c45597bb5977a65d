"""Run LiteLLM's proxy in this process, with one model on a sandbox, kept to 127.0.0.1.

Usage: BENCH_OPENAI_KEY=… BENCH_LITELLM_MASTER_KEY=… python benchmarks/litellm_server.py SANDBOX_URL PORT

Run with the python of ``.venv/bench-litellm`` (``make bench`` makes it). One model, ``gpt-4o``,
an OpenAI-compatible model (``openai/gpt-4o``) whose ``api_base`` is ``SANDBOX_URL/v1``; callers
authenticate with the master key (no database: LiteLLM then checks the key against its
configuration, as the gateway checks its cached token). Both keys are read from the environment
by LiteLLM itself (``os.environ/NAME``), so that neither is in a file or the arguments. One
process, one uvicorn worker, the proxy's own defaults otherwise; the price list it ships is used
rather than one fetched, and any connection beyond 127.0.0.1 fails (the benchmarks' audit hook).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from common import isolate_environment

CONFIG = """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: {api_base}
      api_key: os.environ/BENCH_OPENAI_KEY
general_settings:
  master_key: os.environ/BENCH_LITELLM_MASTER_KEY
litellm_settings:
  telemetry: false
"""


def main() -> None:
    isolate_environment()
    sandbox_url, port = sys.argv[1], sys.argv[2]
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # the price list it ships, not one from the network
    os.environ["LITELLM_TELEMETRY"] = "False"
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    with tempfile.TemporaryDirectory(prefix="ai-admin-bench-litellm-") as folder:
        config = Path(folder) / "config.yaml"
        config.write_text(CONFIG.format(api_base=f"{sandbox_url}/v1"), encoding="utf-8")
        from litellm.proxy.proxy_cli import run_server

        sys.argv = ["litellm", "--config", str(config), "--host", "127.0.0.1", "--port", port, "--num_workers", "1"]
        run_server()


if __name__ == "__main__":
    main()
