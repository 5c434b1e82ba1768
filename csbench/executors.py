"""Executors run tasks and yield their results as they finish: serial, local processes, Dask.

Workers only compute; the calling process is the single writer of the store.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

import torch

from csbench.config import RunConfig
from csbench.errors import CsbenchError
from csbench.runner import Task, TaskResult, run_task


def _limit_threads(threads: int) -> None:
    torch.set_num_threads(max(1, threads))


def run_serial(tasks: list[Task], config: RunConfig) -> Iterator[TaskResult]:
    for task in tasks:
        yield run_task(task, config)


def run_processes(tasks: list[Task], config: RunConfig) -> Iterator[TaskResult]:
    """A pool of `workers` spawned processes sharing the machine's cores."""
    workers = max(1, config.workers)
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_limit_threads,
                               initargs=(threads,))
    try:
        futures = [pool.submit(run_task, task, config) for task in tasks]
        for future in as_completed(futures):
            yield future.result()
    finally:  # on an interrupt, drop the queued tasks instead of finishing them unseen
        pool.shutdown(wait=True, cancel_futures=True)


def run_dask(tasks: list[Task], config: RunConfig) -> Iterator[TaskResult]:
    """A Dask distributed cluster: `--scheduler ADDRESS`, or a local one on loopback."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed as dask_completed
    except ImportError:
        raise CsbenchError("the dask executor needs dask[distributed]: pip install 'csbench[dask]'") from None
    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout="10s")
        except OSError as exc:
            raise CsbenchError(f"cannot reach the Dask scheduler at {config.scheduler}: {exc}") from None
        cluster = None
    else:
        cluster = LocalCluster(n_workers=max(1, config.workers), threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    try:
        futures = [client.submit(run_task, task, config, pure=False) for task in tasks]
        for future in dask_completed(futures):
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


EXECUTORS = {"serial": run_serial, "processes": run_processes, "dask": run_dask}
