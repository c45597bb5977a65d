"""Run one :class:`~ai_admin_widgets.Sandbox` in this process until standard input closes.

Usage: python benchmarks/sandbox_server.py [--latency-ms 200]

Prints the sandbox's URL (``http://127.0.0.1:<port>``) on the first line of standard
output, then serves until its standard input is closed (see ``common.sandbox_process``).
"""

from __future__ import annotations

import argparse
import sys

import ai_admin_widgets.sandbox as sandbox_module
from ai_admin_widgets import Sandbox

#: socketserver's listen backlog is 5 connections: under 64 concurrent clients (bench_gateway's
#: throughput) the rest of the connections that arrive at once are dropped, and their clients wait
#: a second for TCP to try again, or are reset. A deeper queue, for the benchmarks' own sandbox.
sandbox_module._Server.request_queue_size = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=0.0, help="milliseconds to wait before each answer")
    arguments = parser.parse_args()
    with Sandbox(latency_ms=arguments.latency_ms) as sandbox:
        print(sandbox.url, flush=True)
        sys.stdin.read()  # until the benchmark closes our input


if __name__ == "__main__":
    main()
