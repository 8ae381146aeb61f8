"""One background thread per process for a job that must keep running: started on
first need, started again if it died, never twice (the audit sealer, the push sender,
the advice scheduler)."""

import threading
from collections.abc import Callable


class Daemon:
    """A daemon thread running `target`, started by `ensure()` when it is not alive."""

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        self.name = name
        self.target = target
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ensure(self) -> None:
        """Start the thread unless it runs; cheap when it does (no lock taken)."""
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self.target, name=self.name, daemon=True)
                self._thread.start()
