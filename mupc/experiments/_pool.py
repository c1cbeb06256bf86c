"""A pool of worker processes that never outlive their parent and stop when asked.

`concurrent.futures.ProcessPoolExecutor` waits for every queued task when it is shut down, and
its workers, once orphaned by `kill -9` of the parent, finish the queue and then block forever.
This pool is small and explicit instead:

- each worker is a spawned process that runs one task at a time, sent over its own pipe;
- **parent death**: on Linux each worker asks the kernel for SIGTERM when its parent dies
  (`prctl(PR_SET_PDEATHSIG)`); on every platform a watchdog thread checks once a second that
  the parent is still its parent, and an idle worker exits when its pipe closes;
- **stopping**: workers ignore SIGINT (a Ctrl-C reaches the whole process group; the parent
  decides). `terminate()` sends SIGTERM, which a worker turns into an exception that unwinds
  the task (temporary files of interrupted writes are removed on the way), waits a few
  seconds, then kills what is left;
- a worker that dies in a task (killed, out of memory) fails that task, and is replaced.
"""

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection, wait
from typing import Any

_PR_SET_PDEATHSIG = 1
# Seconds a worker gets to unwind after SIGTERM before it is killed.
GRACE_SECONDS = 5.0


class _Stop(BaseException):
    """Raised in a worker by SIGTERM: unwind the task and exit quietly."""


def _raise_stop(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough (parent death sends two)
    raise _Stop


def _stop_again(unraisable) -> None:
    """A worker's `sys.unraisablehook`: a `_Stop` raised where Python cannot propagate it (in
    a garbage-collection callback such as JAX's, or a `__del__`) would be printed as "Exception
    ignored" with a traceback and lost; instead it is delivered again, silently, as a fresh
    SIGTERM that the main thread handles at its next instruction. Anything else goes to the
    default hook."""
    if isinstance(unraisable.exc_value, _Stop):
        signal.signal(signal.SIGTERM, _raise_stop)
        # Sent from another thread a moment later: sent from here, the handler would run (and
        # raise) before this hook returns, inside the hook, where it is lost again.
        threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return
    sys.__unraisablehook__(unraisable)


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when `parent_pid`, its parent, does.

    On Linux the kernel sends SIGTERM at the parent's death (`prctl(PR_SET_PDEATHSIG)`); a
    daemon thread also checks `os.getppid()` every second, sends SIGTERM to this process
    when the parent is gone and exits after `GRACE_SECONDS` if that did not end it.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the request above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(GRACE_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="mupc-parent-watch", daemon=True).start()


def _worker(connection: Connection, parent_pid: int, cores: list[int], env: dict) -> None:
    """A worker's main loop: receive `(key, function, args)`, send `(key, ok, result)`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_stop)
    sys.unraisablehook = _stop_again
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        die_with_parent(parent_pid)
        os.environ.update(env)
        # tqdm's default lock is a multiprocessing semaphore, which the resource tracker would
        # report as leaked after a stop; a worker's bars need only a thread lock.
        from tqdm import tqdm

        tqdm.set_lock(threading.RLock())
        if cores and hasattr(os, "sched_setaffinity"):
            # Before JAX starts: XLA sizes its thread pool to the cores this process may use.
            os.sched_setaffinity(0, set(cores))
        while True:
            try:
                task = connection.recv()
            except (EOFError, OSError):  # the parent closed the pipe or died
                return
            if task is None:
                return
            key, function, args = task
            try:
                reply = (key, True, function(*args))
            except Exception:
                reply = (key, False, traceback.format_exc())
            connection.send(reply)
    except _Stop:
        # Unwound (temporary files removed, metrics closed); exit now, without the atexit
        # hooks of the libraries, which may not survive being interrupted.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)


def core_groups(cores: list[int], workers: int) -> list[list[int]]:
    """Disjoint groups of `cores`, one per worker (worker i gets `cores[i::workers]`; a core
    is shared in turn when there are more workers than cores; empty groups when `cores` is
    empty)."""
    if not cores:
        return [[] for _ in range(workers)]
    if workers >= len(cores):
        return [[cores[i % len(cores)]] for i in range(workers)]
    return [cores[i::workers] for i in range(workers)]


class WorkerPool:
    """`workers` spawned processes running tasks one at a time.

    **Arguments:**

    - `workers`: number of processes.
    - `cores`: CPU cores to pin the workers to (empty: no pinning), shared out so that the
      workers get disjoint groups of them: worker i gets `cores[i::workers]`, e.g. one core
      each when there are as many workers as cores, both cores of a 2-core machine for a
      single worker.
    - `env`: environment variables set in each worker before its first task, or a function
      of the worker's group of cores returning them.
    """

    def __init__(
        self,
        workers: int,
        cores: list[int] | None = None,
        env: dict | Callable[[list[int]], dict] | None = None,
    ):
        self._context = multiprocessing.get_context("spawn")
        self._groups = core_groups(list(cores or []), workers)
        self._env = env if callable(env) else dict(env or {})
        self._workers: list[tuple[Any, Connection]] = []
        for index in range(workers):
            self._workers.append(self._start(index))

    def _start(self, index: int):
        parent, child = self._context.Pipe()
        group = self._groups[index]
        env = self._env(group) if callable(self._env) else self._env
        process = self._context.Process(
            target=_worker, args=(child, os.getpid(), group, env), daemon=True
        )
        # The child inherits the blocked SIGINT and ignores it before unblocking it, so a
        # Ctrl-C while it starts cannot print a traceback there; here it is delivered after.
        blocked = {signal.SIGINT}
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        child.close()
        return process, parent

    def run(
        self,
        tasks: Iterable[tuple[Any, Callable, tuple]],
        done: Callable[[Any, bool, Any], None],
    ) -> None:
        """Run `function(*args)` for every `(key, function, args)` of `tasks`, calling
        `done(key, ok, result_or_traceback)` in this process as each ends."""
        queue = list(tasks)[::-1]
        busy: dict[int, Any] = {}  # worker index -> key of its task
        idle = list(range(len(self._workers)))
        while queue or busy:
            while queue and idle:
                index = idle.pop()
                key, function, args = queue.pop()
                self._workers[index][1].send((key, function, args))
                busy[index] = key
            handles = [self._workers[i][1] for i in busy]
            ready = set(wait(handles + [self._workers[i][0].sentinel for i in busy]))
            for index in list(busy):
                process, connection = self._workers[index]
                if connection in ready or connection.poll():
                    try:
                        key, ok, result = connection.recv()
                    except (EOFError, OSError):
                        pass  # died while replying: handled below as a death
                    else:
                        del busy[index]
                        idle.append(index)
                        done(key, ok, result)
                        continue
                if process.sentinel in ready or not process.is_alive():
                    process.join()
                    key = busy.pop(index)
                    connection.close()
                    self._workers[index] = self._start(index)
                    idle.append(index)
                    done(key, False, f"the worker process died (exit code {process.exitcode})")

    def close(self) -> None:
        """Let idle workers exit, then wait for them."""
        for _, connection in self._workers:
            with contextlib.suppress(OSError, ValueError):
                connection.send(None)
        for process, connection in self._workers:
            process.join(GRACE_SECONDS)
            connection.close()
        self.terminate()

    def terminate(self) -> None:
        """Stop every worker now: SIGTERM, a few seconds to unwind, then SIGKILL."""
        alive = [process for process, _ in self._workers if process.is_alive()]
        for process in alive:
            with contextlib.suppress(OSError):
                process.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in alive:
            if process.is_alive():
                process.kill()
                process.join()
        for _, connection in self._workers:
            connection.close()
