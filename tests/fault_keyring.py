"""A file keyring that fails or stops at a chosen step, for the all-or-nothing tests.

Used in-process (``fail_set_at``, ``fail_delete``) and by child processes that the
tests kill with SIGKILL while they wait at a step (``AI_ADMIN_TEST_STOP_AFTER``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from keyrings.alt.file import PlaintextKeyring


class FaultyKeyring(PlaintextKeyring):
    """PlaintextKeyring in ``path`` that can fail or stop at a step.

    Args:
        path: the keyring file.
        fail_set_at: raise on this call of ``set_password`` (1 = the first).
        fail_delete: raise on every ``delete_password``.
        stop_after: ``"set:N"`` (after the N-th ``set_password``) or ``"delete:1"`` (before the
            first ``delete_password`` of a key that exists): write ``stopped_file`` and sleep until killed.
        stopped_file: the file that tells the test the step was reached.
    """

    def __init__(
        self,
        path: str,
        *,
        fail_set_at: int = 0,
        fail_delete: bool = False,
        stop_after: str = "",
        stopped_file: str = "",
    ) -> None:
        super().__init__()
        self.file_path = path
        self.fail_set_at = fail_set_at
        self.fail_delete = fail_delete
        self.stop_after = stop_after
        self.stopped_file = stopped_file
        self.sets = 0

    def _stop(self) -> None:
        Path(self.stopped_file).write_text("stopped")
        time.sleep(120)

    def set_password(self, service: str, username: str, password: str) -> None:
        self.sets += 1
        if self.sets == self.fail_set_at:
            raise OSError("simulated keyring failure")
        super().set_password(service, username, password)
        if self.stop_after == f"set:{self.sets}":
            self._stop()

    def delete_password(self, service: str, username: str) -> None:
        if self.fail_delete:
            raise OSError("simulated keyring failure")
        if self.stop_after == "delete:1" and self.get_password(service, username) is not None:
            self._stop()  # the first delete of a key that exists: the old revision's, after the record
        super().delete_password(service, username)


def from_environment() -> FaultyKeyring:
    """The keyring a child process uses: path and step from ``AI_ADMIN_TEST_KEYRING`` and ``AI_ADMIN_TEST_STOP_AFTER``."""
    return FaultyKeyring(
        os.environ["AI_ADMIN_TEST_KEYRING"],
        stop_after=os.environ.get("AI_ADMIN_TEST_STOP_AFTER", ""),
        stopped_file=os.environ.get("AI_ADMIN_TEST_STOPPED", ""),
    )
