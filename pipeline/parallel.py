"""Reading beside loading: a worker thread one step ahead, or worker processes for pieces.

Both keep the order of their input, so a run stages the same rows in the same order whatever
the number of workers, and both bound what is held in memory.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

from pipeline.errors import KatasterError
from pipeline.processes import dies_with_this_process


def pipelined(items, func, depth=2):
    """Yield ``func(item)`` for each item, computed one step ahead in a worker thread.

    Errors in the worker are raised here; if the consumer stops early, the worker stops and
    the item iterator is closed (so importers release their temporary files).
    """
    results = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry):
        while not stop.is_set():
            try:
                results.put(entry, timeout=0.1)
                return
            except queue.Full:
                continue

    def work():
        iterator = iter(items)
        try:
            for item in iterator:
                if stop.is_set():
                    break
                put(("item", func(item)))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer and re-raised
            put(("error", err))
        finally:
            close = getattr(iterator, "close", None)
            if close:
                close()
            put(("done", None))

    worker = threading.Thread(target=work, name="kataster-encode", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = results.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join(timeout=30)


def in_processes(func, items, workers, ahead=1, **kwargs):
    """Yield ``func(item, **kwargs)`` for each item, in order, computed in worker processes.

    At most ``workers + ahead`` results are pending (computed or being computed) at any time,
    so memory stays bounded however many items there are. Workers are spawned (not forked:
    the caller holds a database connection and threads) and die with the calling process,
    also when it is killed with SIGKILL. An exception in a worker is raised here; the
    remaining items are cancelled.
    """
    work = partial(func, **kwargs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context,
                             initializer=dies_with_this_process()) as pool:
        pending = deque()
        try:
            for item in items:
                pending.append(pool.submit(work, item))
                if len(pending) > workers + ahead - 1:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            raise KatasterError(
                "a worker process ended abruptly (killed, for example by the system for lack "
                "of memory); nothing was kept. With import.workers: 1 the input is read in the "
                "importing process alone") from None
        finally:
            for future in pending:
                future.cancel()


