"""Failing fast: how long a Save takes to fail when the network does.

* an endpoint that accepts the connection and never answers (``Sandbox.unresponsive_endpoint``)
  must fail at the configured check timeout, within 10 %;
* a refused port (``Sandbox.refused_endpoint``) in under 0.1 s;
* an unknown host name (``Sandbox.unknown_host_endpoint``, a ``.invalid`` name that the
  running sandbox answers locally, so no DNS query leaves the machine) in under 1 s.

Each run is a whole ``settings.save(...)`` of an Azure OpenAI integration, from the call
until ``VerificationFailed`` is raised; the three kinds take turns. The sandbox runs in
this process, because its unknown-host answer is a resolver patch of this process.
"""

from __future__ import annotations

from collections.abc import Callable

from common import AZURE_DEPLOYMENTS, emit, figure, fresh_settings, interleaved, isolate_environment, milliseconds

RUNS = 5
#: The limits of the Save under test: a check ends after CHECK seconds, retries included.
CONNECT_SECONDS = 0.5
CHECK_SECONDS = 1.0
TOLERANCE = 0.10
REFUSED_LIMIT = 0.1
UNKNOWN_HOST_LIMIT = 1.0


def main() -> None:
    isolate_environment()
    import ai_admin_widgets as aiw

    settings = fresh_settings(timeouts=aiw.Timeouts(connect=CONNECT_SECONDS, check=CHECK_SECONDS))
    codes: dict[str, set[str]] = {}

    with aiw.Sandbox() as sandbox:

        def failing_save(name: str, endpoint: str) -> Callable[[], None]:
            def run() -> None:
                integration = aiw.AzureOpenAIIntegration.shared(
                    endpoint_url=endpoint,
                    api_key=sandbox.azure_api_key,
                    language_deployment_id=AZURE_DEPLOYMENTS["language"],
                    embeddings_deployment_id=AZURE_DEPLOYMENTS["embeddings"],
                )
                try:
                    settings.save(integration)
                except aiw.VerificationFailed as failed:
                    codes.setdefault(name, set()).update(check.code.value for check in failed.report.checks)
                else:
                    raise AssertionError(f"a save against the {name} endpoint succeeded")

            return run

        times = interleaved(
            {
                "unresponsive": failing_save("unresponsive", sandbox.unresponsive_endpoint),
                "refused": failing_save("refused", sandbox.refused_endpoint),
                "unknown-host": failing_save("unknown-host", sandbox.unknown_host_endpoint),
            },
            runs=RUNS,
        )
    assert codes == {"unresponsive": {"timeout"}, "refused": {"connection_failed"}, "unknown-host": {"dns_failure"}}, (
        codes
    )

    how = (
        f"A whole Save of an Azure OpenAI integration with Timeouts(connect={CONNECT_SECONDS:g}, "
        f"check={CHECK_SECONDS:g}), until VerificationFailed; {RUNS} runs of each kind, interleaved, "
        "after one untimed run each. Both model checks fail with the expected code in every run."
    )
    unresponsive = sorted(times["unresponsive"])[RUNS // 2]
    refused = sorted(times["refused"])[RUNS // 2]
    unknown = sorted(times["unknown-host"])[RUNS // 2]
    emit(
        [
            figure(
                "fail: never answers",
                ours="Save against an endpoint that accepts the connection and never answers",
                measured=times["unresponsive"],
                ratio=unresponsive / CHECK_SECONDS,
                target=f"the check timeout ({CHECK_SECONDS:g} s) ± {TOLERANCE:.0%}: ratio to it 0.9–1.1",
                met=abs(unresponsive / CHECK_SECONDS - 1) <= TOLERANCE,
                how=how + " The ratio is the median over the configured check timeout.",
                miss=(
                    f"The save took {milliseconds(unresponsive)} against a limit of {CHECK_SECONDS:g} s. "
                    "Longer: something waits outside `_Check.run`'s `asyncio.wait_for` (a retry after the "
                    "timeout, the store, the client's closing). Shorter: a transport timeout fires before the "
                    "check's (httpx's read timeout is the check timeout)."
                ),
            ),
            figure(
                "fail: refused port",
                ours="Save against a port that refuses connections",
                measured=times["refused"],
                ratio=refused / REFUSED_LIMIT,
                target=f"< {REFUSED_LIMIT:g} s (ratio to it < 1)",
                met=refused < REFUSED_LIMIT,
                how=how,
                miss=(
                    f"A refused connection is known within a millisecond; the other {milliseconds(refused)} are the "
                    "Save's own work (client, event loop, store checks): profile it with the sandbox."
                ),
            ),
            figure(
                "fail: unknown host",
                ours="Save against a host name that does not exist (.invalid)",
                measured=times["unknown-host"],
                ratio=unknown / UNKNOWN_HOST_LIMIT,
                target=f"< {UNKNOWN_HOST_LIMIT:g} s (ratio to it < 1)",
                met=unknown < UNKNOWN_HOST_LIMIT,
                how=how + " A real resolver adds its own time for an unknown name; the sandbox answers at once.",
                miss=f"The save took {milliseconds(unknown)}: look for a retry after a DNS failure in verify.py.",
            ),
        ]
    )


if __name__ == "__main__":
    main()
