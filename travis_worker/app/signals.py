"""Signals, as travis-ci/worker reads them. The handlers only record what was asked; a task
of the loop acts on it (uvicorn's habit), so no handler ever runs in the middle of a step.

    SIGINT   graceful shutdown; a second one stops immediately
    SIGTERM  immediate shutdown
    SIGTTIN  one processor more;  SIGTTOU  one processor less
    SIGUSR1  log pool information
    SIGUSR2  pause; again: resume
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from travis_worker.processor.pool import ProcessorPool

logger = logging.getLogger(__name__)

HANDLED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


@contextmanager
def signals_handled(act: Callable[[signal.Signals], None]) -> Iterator[None]:
    """While the block runs, each signal of HANDLED is handed to `act` from a loop task."""
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[signal.Signals] = asyncio.Queue()
    for sig in HANDLED:
        loop.add_signal_handler(sig, received.put_nowait, sig)

    async def act_on_each() -> None:
        while True:
            act(await received.get())

    acting = asyncio.create_task(act_on_each(), name="signals")
    try:
        yield
    finally:
        acting.cancel()
        for sig in HANDLED:
            loop.remove_signal_handler(sig)


# Signals that always do the same to the pool: what is logged, and what is done.
_POOL_ACTIONS: dict[signal.Signals, tuple[str, Callable[[ProcessorPool], None]]] = {
    signal.SIGTTIN: ("SIGTTIN received, adding processor to pool", ProcessorPool.increment),
    signal.SIGTTOU: ("SIGTTOU received, removing processor from pool", ProcessorPool.decrement),
    signal.SIGUSR2: (
        "SIGUSR2 received, toggling graceful shutdown and pause",
        ProcessorPool.toggle_pause,
    ),
}


def steer_pool(
    sig: signal.Signals,
    pool: ProcessorPool,
    *,
    shutdown_now: Callable[[], None],
    log_pool_info: Callable[[str], None],
) -> None:
    """What `sig` does to the pool. `shutdown_now` is the worker's immediate shutdown, which
    keeps a deadline."""
    if sig == signal.SIGUSR1:
        log_pool_info("received SIGUSR1")
    elif sig == signal.SIGTERM:
        logger.info("SIGTERM received, shutting down immediately")
        shutdown_now()
    elif sig == signal.SIGINT and pool.draining:
        logger.info("SIGINT received again, shutting down immediately")
        shutdown_now()
    elif sig == signal.SIGINT:
        logger.info("SIGINT received, starting graceful shutdown")
        pool.graceful_shutdown()
    elif sig in _POOL_ACTIONS:
        message, action = _POOL_ACTIONS[sig]
        logger.info(message)
        action(pool)
