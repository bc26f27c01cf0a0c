"""Worker processes of a local build: their share of the cores, and an exit
when the build process dies (so ``kill -9`` of a build leaves no orphans)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time


def init_worker(threads: int, parent_pid: int | None = None) -> None:
    """Give each worker process its share of the cores (transcriber threads), and
    make it exit when the build process dies (see :func:`exit_with_parent`)."""
    os.environ["COPDATA_THREADS"] = str(threads)
    if parent_pid is not None:
        exit_with_parent(parent_pid)


def exit_with_parent(parent_pid: int, poll_seconds: float = 1.0) -> None:
    """End this process when ``parent_pid`` dies, even by ``kill -9``.

    On Linux the kernel sends SIGKILL on the parent's death
    (``prctl(PR_SET_PDEATHSIG)``); everywhere a daemon thread also polls the
    parent pid and exits when this process has been re-parented. A worker
    that outlives its build would hold memory and a lock-less output folder.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl: the watchdog still runs
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="copdata-parent-watchdog", daemon=True).start()
