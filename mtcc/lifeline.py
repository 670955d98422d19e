"""No child process outlives mtcc: the helpers every worker mtcc starts uses.

Standard library only: stressor workers import this before numpy, tenants before TVM.
"""
from __future__ import annotations

import ctypes
import os
import signal
import threading

PR_SET_PDEATHSIG = 1
PARENT_ENV = "MTCC_PARENT_PID"
PDEATHSIG_ENV = "MTCC_PDEATHSIG"


def pdeathsig_usable() -> bool:
    """PR_SET_PDEATHSIG fires when the parent *thread* exits, so a parent asks for it
    only when it starts the child from its main thread (whose end is the process's)."""
    return threading.current_thread() is threading.main_thread()


def child_env() -> dict[str, str]:
    """Environment entries that tell a child who its parent is (see die_with_parent)."""
    return {PARENT_ENV: str(os.getpid()), PDEATHSIG_ENV: "1" if pdeathsig_usable() else "0"}


def die_with_parent(parent_pid: int | None = None, use_pdeathsig: bool | None = None) -> None:
    """In the child: get SIGKILL when the parent dies, and exit now if it already has.
    Without arguments, reads what child_env() put in the environment."""
    if parent_pid is None:
        parent_pid = int(os.environ.get(PARENT_ENV, "0")) or None
    if use_pdeathsig is None:
        use_pdeathsig = os.environ.get(PDEATHSIG_ENV) == "1"
    if use_pdeathsig:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if parent_pid and os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


READER_JOIN_S = 5.0


def close_pipe(conn, reader: threading.Thread | None, timeout: float = READER_JOIN_S) -> None:
    """Close the parent's end of a worker's pipe once the thread reading it has ended.

    Closing a descriptor another thread is about to read is a race: the number is free
    at once, the next socket or pipe this process opens takes it, and the stale reader
    then reads (and swallows) bytes meant for someone else.  So the socket is shut down
    first (a blocked read returns end-of-file), the reader joined, and only then closed;
    a reader that does not end in `timeout` keeps its descriptor open (a leak, not a
    corrupted pipe)."""
    import socket

    if conn is None or conn.closed:
        return
    if reader is not None and reader is not threading.current_thread() and reader.is_alive():
        try:
            with socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as dup:
                dup.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # not connected any more: the reader has seen its end already
        reader.join(timeout)
        if reader.is_alive():
            return
    conn.close()
