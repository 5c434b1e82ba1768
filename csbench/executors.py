"""Executors run tasks and yield their results as they finish: serial, local processes, Dask.

Workers only compute; the calling process is the single writer of the store, and it writes
each result as soon as it is yielded, so an interrupt loses only the tasks in flight.

Failures of a task's process never end the sweep; the task gets status `failed`:

- `--task-timeout SECONDS` (default: no limit) bounds each task, counted from the moment a
  worker starts it: a task past it is stopped by ending its worker ("timed out after S s").
  The serial executor runs in-process without a limit, and in one child process with one,
  since a hung call in the calling process cannot be stopped.
- A worker that dies (`os._exit`, a segfault, the OOM killer) fails the task it was running
  ("worker died: ..."); a new worker takes the next task. In-process serial runs have no
  worker: a prior that ends the process ends csbench (finished tasks stay stored).
- Ctrl-C ends every worker at once, hung or not, and propagates as KeyboardInterrupt.
- Dask: the local cluster never retries a task whose worker died while running it (tasks are
  deterministic: a retry would die again); a `--scheduler` cluster retries as its
  `distributed.scheduler.allowed-failures` says (Dask's default: 3 times), then the task fails.
  A task that was only waiting on that worker is resubmitted. A timed-out task's worker process
  is ended (its nanny starts a new one).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing import get_context, parent_process
from multiprocessing.connection import Connection, wait

import torch

from csbench.config import EXECUTOR_NAMES, RunConfig
from csbench.errors import CsbenchError
from csbench.progress import route_progress
from csbench.runner import Task, TaskResult, failed_result, run_task


Progress = Callable[[Task, str, float | None], None]  # (task, what it does now, fraction done), csbench/progress.py


def run_serial(tasks: list[Task], config: RunConfig, on_progress: Progress | None = None) -> Iterator[TaskResult]:
    """One task at a time: in this process, or in one child process when tasks have a timeout."""
    if config.task_timeout is not None:
        yield from _run_pool(tasks, config, 1, torch.get_num_threads(), on_progress)
        return
    for task in tasks:
        route_progress((lambda text, done, task=task: on_progress(task, text, done)) if on_progress else None)
        try:
            yield run_task(task, config)
        finally:
            route_progress(None)


def run_processes(tasks: list[Task], config: RunConfig, on_progress: Progress | None = None) -> Iterator[TaskResult]:
    """`workers` spawned processes sharing the machine's cores."""
    workers = max(1, config.workers)
    yield from _run_pool(tasks, config, workers, max(1, (os.cpu_count() or 1) // workers), on_progress)


def _serve(conn: Connection, config: RunConfig, threads: int) -> None:
    """A worker process: say it is ready, then run each task it is sent until its pipe closes;
    the task's progress messages go to the parent as ("progress", text, done). It ignores Ctrl-C from
    its start (`_ctrl_c_ignored`): that is the parent's to handle."""
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    torch.set_num_threads(threads)
    route_progress(lambda text, done: conn.send(("progress", text, done)))
    conn.send(None)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        try:
            conn.send(run_task(task, config))
        except KeyboardInterrupt as exc:  # raised by a prior itself: the parent stops as on Ctrl-C
            conn.send(exc)


@contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """SIGINT ignored in this (main) thread meanwhile: a process started now inherits that, and a
    Python child keeps an ignored SIGINT ignored, so it never raises KeyboardInterrupt mid-import."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _exit_with_parent() -> None:
    """End this worker as soon as its parent ends, even killed, even while a task hangs."""
    wait([parent_process().sentinel])
    os._exit(1)


class _Worker:
    """One spawned process running one task at a time; knows its task and when it started it."""

    def __init__(self, config: RunConfig, threads: int):
        self.conn, child = get_context("spawn").Pipe()
        self.process = get_context("spawn").Process(target=_serve, args=(child, config, threads),
                                                    daemon=True)
        with _ctrl_c_ignored():  # inherited: a Ctrl-C while the worker still imports is the parent's
            self.process.start()
        child.close()
        self.ready = False
        self.task: Task | None = None
        self.start = 0.0

    def send(self, task: Task) -> None:
        self.task, self.start = task, time.perf_counter()
        self.conn.send(task)

    def receive(self, on_progress: Progress | None = None) -> TaskResult | None:
        """What the worker sent, if anything: its readiness, progress, or a result. EOFError if
        it died."""
        if not self.conn.poll():
            return None
        message = self.conn.recv()
        if isinstance(message, KeyboardInterrupt):
            raise message
        if message is None:
            self.ready = True
            return None
        if isinstance(message, tuple):  # ("progress", text, done) of the running task
            if on_progress and self.task:
                on_progress(self.task, *message[1:])
            return None
        self.task = None
        return message

    def death(self) -> str:
        """Why the process ended, for the task it was running."""
        self.process.join()
        code = self.process.exitcode
        return f"exit code {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"

    def stop(self) -> None:
        self.conn.close()
        self.process.kill()
        self.process.join()


def _run_pool(tasks: list[Task], config: RunConfig, workers: int, threads: int,
              on_progress: Progress | None = None) -> Iterator[TaskResult]:
    """Tasks on `workers` processes; a worker that dies or times out is replaced by a new one."""
    queue = deque(tasks)
    pool = [_Worker(config, threads) for _ in range(min(workers, len(tasks)))]
    try:
        while queue or any(w.task for w in pool):
            for worker in pool:
                if worker.ready and worker.task is None and queue:
                    worker.send(queue.popleft())
            wait([w.conn for w in pool] + [w.process.sentinel for w in pool], _wait_time(pool, config))
            for i, worker in enumerate(pool):
                result, lost = _outcome(worker, config, on_progress)
                if result is not None:
                    yield result
                if lost:
                    worker.stop()
                    pool[i] = _Worker(config, threads) if queue else None
            pool = [w for w in pool if w is not None]
    finally:  # on an interrupt or an error, end every worker now, hung or not
        for worker in pool:
            if worker is not None:
                worker.stop()


def _wait_time(pool: list[_Worker], config: RunConfig) -> float | None:
    """Seconds until the first running task's timeout, None without a timeout."""
    if config.task_timeout is None or not any(w.task for w in pool):
        return None
    first = min(w.start for w in pool if w.task)
    return max(0.0, first + config.task_timeout - time.perf_counter())


def _outcome(worker: _Worker, config: RunConfig, on_progress: Progress | None = None
             ) -> tuple[TaskResult | None, bool]:
    """(the worker's task result if it has one, whether the worker is lost and must be replaced).
    A task whose worker died or ran past the timeout fails with the reason."""
    task, start = worker.task, worker.start
    try:
        result = worker.receive(on_progress)
        dead = not worker.process.is_alive()
    except EOFError:
        result, dead = None, True
    if result is not None:
        return result, False
    if dead:
        if not worker.ready:
            raise CsbenchError(f"a worker process failed to start ({worker.death()})")
        return (failed_result(task, config, f"worker died: {worker.death()}", start) if task else None), True
    timeout = config.task_timeout
    if task is not None and timeout is not None and time.perf_counter() - start >= timeout:
        return failed_result(task, config, f"timed out after {timeout:g} s", start), True
    return None, False


def run_dask(tasks: list[Task], config: RunConfig, on_progress: Progress | None = None) -> Iterator[TaskResult]:
    """A Dask distributed cluster: `--scheduler ADDRESS`, or a local one on loopback (progress
    inside a task is not relayed: the bar counts finished tasks)."""
    try:
        import distributed
    except ImportError:
        raise CsbenchError("the dask executor needs dask[distributed]: pip install 'csbench[dask]'") from None
    with _dask_client(config) as client:
        topic = f"csbench-start-{uuid.uuid4().hex}"
        started: dict[int, tuple[float, str]] = {}  # task index -> (when, where) its attempt started
        client.subscribe_topic(topic, lambda event: started.__setitem__(
            event[1]["index"], (time.perf_counter(), event[1]["worker"])))
        pending: dict = {}  # future -> (task index, task)

        def submit(index: int, task: Task) -> None:
            pending[client.submit(_dask_task, topic, index, task, config, pure=False)] = (index, task)

        for index, task in enumerate(tasks):
            submit(index, task)
        resubmitted: Counter = Counter()
        gone: set[str] = set()  # workers seen to have left while running a task
        alone_since = None  # when the cluster was last seen with no worker at all
        try:
            while pending:
                with suppress(distributed.TimeoutError):
                    distributed.wait(list(pending), timeout=0.5, return_when="FIRST_COMPLETED")
                if client.scheduler_info().get("workers"):
                    alone_since = None
                elif alone_since is None:
                    alone_since = time.perf_counter()
                elif time.perf_counter() - alone_since > _NO_WORKER_GRACE:  # nothing would ever run
                    for _, task in list(pending.values()):
                        yield failed_result(task, config, f"no Dask worker for {_NO_WORKER_GRACE:g} s", time.perf_counter())
                    return
                for future in [f for f in pending if f.done()]:
                    index, task = pending.pop(future)
                    start, worker = started.pop(index, (time.perf_counter(), ""))
                    if _bystander(future, worker) and resubmitted[index] < _RESUBMISSIONS:
                        resubmitted[index] += 1
                        submit(index, task)
                    else:
                        yield _dask_result(future, task, config, start)
                yield from _dask_timeouts(client, pending, started, gone, config)
        finally:  # nothing of this run keeps running on the cluster
            client.cancel(list(pending))


# Times a task is resubmitted after a worker died that was running another task while it waited.
_RESUBMISSIONS = 3
# Seconds a cluster may have no worker at all (e.g. between a nanny's restarts) before the tasks
# still waiting are failed instead of waiting for ever.
_NO_WORKER_GRACE = 120.0


def _bystander(future, worker: str) -> bool:
    """Whether the future failed because its worker died while it waited there (another task
    was running): `worker` is where the task last started ("" if it never did)."""
    from distributed import KilledWorker

    exc = future.exception() if future.status == "error" else None
    return isinstance(exc, KilledWorker) and exc.last_worker.address != worker


def _dask_task(topic: str, index: int, task: Task, config: RunConfig) -> TaskResult:
    """run_task on a Dask worker, announcing first when (and where) it starts."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(topic, {"index": index, "worker": worker.address})
    return run_task(task, config)


# Our local cluster does not retry a task whose worker died running it: the death is that task's
# (as in the process pool), and tasks are deterministic, so a rerun would die too.
_LOCAL_SCHEDULER = {"distributed.scheduler.allowed-failures": 0}


@contextmanager
def _dask_client(config: RunConfig):
    """A client of `config.scheduler`, or of a local cluster on loopback closed on exit."""
    import dask
    from distributed import Client, LocalCluster

    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout="10s")
        except Exception as exc:  # ValueError, OSError, even AssertionError for a bad address
            reason = f"{exc}".splitlines()[0] if str(exc) else type(exc).__name__
            raise CsbenchError(f"cannot reach the Dask scheduler at {config.scheduler}: {reason}") from None
        with client:
            yield client
        return
    with dask.config.set(_LOCAL_SCHEDULER), \
            LocalCluster(n_workers=max(1, config.workers), threads_per_worker=1, processes=True,
                         host="127.0.0.1", dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as client:
        client.register_plugin(_ignore_ctrl_c())
        yield client


def _ignore_ctrl_c():
    """A plug-in that makes every worker of our local cluster, restarted ones too, leave Ctrl-C
    (sent to the whole process group by a terminal) to this process."""
    from distributed import WorkerPlugin

    class IgnoreCtrlC(WorkerPlugin):
        name = "csbench-ignore-ctrl-c"

        def setup(self, worker) -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    return IgnoreCtrlC()


def _dask_result(future, task: Task, config: RunConfig, start: float) -> TaskResult:
    """A finished future's result; a task Dask gave up on (its workers died) fails with the reason."""
    from distributed import KilledWorker

    if future.status == "finished":
        return future.result()
    if future.status != "error":
        return failed_result(task, config, f"dask: the task was {future.status}", start)
    exc = future.exception()
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    if isinstance(exc, KilledWorker):
        reason = f"worker died: {exc.allowed_failures + 1} Dask worker(s) died running it"
    else:
        reason = f"dask: {type(exc).__name__}: {exc}".splitlines()[0][:500]
    return failed_result(task, config, reason, start)


def _dask_timeouts(client, pending: dict, started: dict, gone: set[str],
                   config: RunConfig) -> Iterator[TaskResult]:
    """Fail the tasks running past the timeout and end their worker processes, since a thread
    cannot be stopped (a nanny starts a new worker; without one, the cluster has one worker less).
    An attempt whose worker has left the cluster (now added to `gone`) ended with it; Dask retries
    or fails that task, and a task waiting there is resubmitted."""
    timeout = config.task_timeout
    now = time.perf_counter()
    overdue = {future: (index, task) for future, (index, task) in pending.items()
               if timeout is not None and index in started and started[index][1] not in gone
               and now - started[index][0] >= timeout}
    workers = client.scheduler_info()["workers"] if overdue else {}
    for future, (index, task) in overdue.items():
        start, worker = started[index]
        if worker not in workers:
            gone.add(worker)
        else:
            del pending[future]
            del started[index]
            future.cancel()
            client.run(_end_process_soon, workers=[worker])  # its nanny starts a new one
            yield failed_result(task, config, f"timed out after {timeout:g} s", start)



def _end_process_soon() -> None:
    """End this process (a Dask worker) just after answering the call that asked for it."""
    threading.Timer(0.2, os._exit, (1,)).start()


EXECUTORS = dict(zip(EXECUTOR_NAMES, (run_serial, run_processes, run_dask)))
