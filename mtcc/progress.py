"""Progress messages of long work: a callable taking one line, or None for silence.

The CLI passes a printer to stderr; library users pass their own or nothing."""
from __future__ import annotations

from typing import Callable, Optional

Progress = Optional[Callable[[str], None]]


def say(progress: Progress, message: str) -> None:
    if progress:
        progress(message)
