"""An asyncio event loop running in a background thread, for servers started from sync code."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any, Coroutine, TypeVar

__all__ = ["BackgroundLoop", "CallerLoop", "make_runner"]

T = TypeVar("T")


class BackgroundLoop:
    """Owns a daemon thread running an event loop; ``run`` executes a coroutine there."""

    def __init__(self, name: str = "cogment-gym-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.submit(coro).result(timeout)

    @property
    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def close(self) -> None:
        """Cancel what still runs on the loop, stop it and join the thread."""
        if self.loop.is_closed():
            return
        if not self.in_loop_thread and self.loop.is_running():
            try:
                self.run(_cancel_all(), timeout=10)
            except Exception:
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.in_loop_thread:
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self.loop.close()


async def _cancel_all() -> None:
    me = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


class CallerLoop:
    """An event loop driven from the caller's thread: ``run`` blocks until the coroutine ends.

    This avoids a thread hand-off per call (the fast path for a synchronous Gymnasium env). The
    loop only runs during ``run``; tasks started on it progress at the next call.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.loop.run_until_complete(coro)

    def wait(self, task: asyncio.Future[T]) -> T:
        """Run the loop until ``task``, already started on it, is done; its result (no new task)."""
        return self.loop.run_until_complete(task)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


def make_runner() -> CallerLoop | BackgroundLoop:
    """A caller-thread loop, unless this thread already runs one (Jupyter): then a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return CallerLoop()
    return BackgroundLoop("cogment-gym-client")
