"""Chunks of runs, in this process or on an executor: the one mechanism of replay and labelling.

`map_chunks(func, runs, *args)` splits the runs into chunks, calls `func(chunk, *args)` on
each (in this process, or on a `concurrent.futures.Executor` such as a
`ProcessPoolExecutor` or a dask `Client.get_executor()`), advances a progress bar by the
chunk's runs as each finishes, and returns the results in chunk order. On an executor at
most two chunks per worker are in flight, which bounds the memory of pickled arguments.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["chunks", "map_chunks", "workers"]

T = TypeVar("T")
R = TypeVar("R")


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    """`items` in consecutive chunks of `size` (the last one shorter)."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def workers(executor: cf.Executor) -> int:
    """How many workers `executor` has (a dask client's threads; 4 when it cannot say)."""
    value = getattr(executor, "_max_workers", None)
    if isinstance(value, int) and value > 0:
        return value
    client = getattr(executor, "_client", None)
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # a client that cannot answer still gets a sensible default
            return 4
    return 4


def map_chunks(
    func: Callable[..., R],
    items: Sequence[T],
    *args: Any,
    executor: cf.Executor | None = None,
    chunk_size: int | None = None,
    local_chunk_size: int = 16,
    bar: Any = None,
) -> list[R]:
    """`func(chunk, *args)` for every chunk of `items`, results in chunk order.

    Parameters
    ----------
    func : callable
        Called with a list of items and `args`; on an executor it must be picklable.
    items : sequence
        What to split.
    executor : concurrent.futures.Executor, optional
        Where to run the chunks; default: in this process.
    chunk_size : int, optional
        Items per chunk; default `local_chunk_size` in this process, and on an executor
        enough for about four chunks per worker.
    bar : object with `update(n)`, optional
        Advanced by the size of each chunk as it finishes.
    """
    if executor is None:
        out: list[R] = []
        for chunk in chunks(items, chunk_size or local_chunk_size):
            out.append(func(chunk, *args))
            if bar is not None:
                bar.update(len(chunk))
        return out
    n_workers = workers(executor)
    size = chunk_size or max(1, math.ceil(len(items) / (4 * n_workers)))
    parts = chunks(items, size)
    results: dict[int, R] = {}
    pending: dict[cf.Future[R], int] = {}
    todo = iter(enumerate(parts))
    for i, chunk in itertools.islice(todo, 2 * n_workers):
        pending[executor.submit(func, chunk, *args)] = i
    while pending:
        done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
        for fut in done:
            i = pending.pop(fut)
            results[i] = fut.result()
            if bar is not None:
                bar.update(len(parts[i]))
            nxt = next(todo, None)
            if nxt is not None:
                pending[executor.submit(func, nxt[1], *args)] = nxt[0]
    return [results[i] for i in range(len(parts))]
