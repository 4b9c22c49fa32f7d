"""Process helpers, in one place: a free port on loopback, and children that die with us.

Used by the worker pools of imports and validation (``pipeline.parallel``), by the embedded
cluster (its port) and by the map services' supervisor (``exporters.serving.server``: nginx, MapServer,
pygeoapi).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
from functools import partial

PR_SET_PDEATHSIG = 1             # prctl(2)


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent(parent=None, signum=signal.SIGKILL, keep_interrupt=False):
    """In a child (a pool's initializer or a ``preexec_fn``): ask Linux to send ``signum`` to
    this process when its parent dies, even by SIGKILL.

    Pool workers (``signum`` SIGKILL) wait for work on a queue whose writing end they hold
    themselves, so without this they would outlive a killed import forever, and Ctrl-C is the
    parent's to handle (it stops the run; the workers end with the pool), not a traceback per
    worker: they ignore SIGINT unless ``keep_interrupt``. Services (SIGTERM) get the chance to
    stop cleanly. ``parent``: the pid that must still be the parent once the request holds
    (it may have died before)."""
    if not keep_interrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signum)
    except (OSError, AttributeError):      # not Linux: no such request there (a killed
        return                             # parent may then leave its children waiting)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def dies_with_this_process():
    """An initializer for worker pools (ours and Dask's): the worker dies with this process."""
    return partial(die_with_parent, os.getpid())


def service_child():
    """A ``preexec_fn`` for the services we supervise: SIGTERM when the launcher dies."""
    die_with_parent(signum=signal.SIGTERM, keep_interrupt=True)
