"""Where items run: worker processes on this machine, or a Ray cluster.

Both run :func:`~copdata.build.item.process_item`, so the output is identical."""

from __future__ import annotations

import logging
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Callable, Iterator


from ..errors import CopDataError
from ..workers import init_worker
from .item import process_item

log = logging.getLogger(__name__)

def _always() -> bool:
    return True


def run_local(source, items, settings, out_dir, workers,
               keep_going: Callable[[], bool] = _always) -> Iterator[dict]:
    """Process items in order; a new item is queued only while ``keep_going()``
    (at most two per worker are queued or running at any time)."""
    if workers <= 1:
        for item in items:
            if not keep_going():
                return
            yield process_item(source, item, settings, out_dir)
        return
    share = max(1, len(os.sched_getaffinity(0)) // workers)
    queue = iter(items)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                             initializer=init_worker, initargs=(share, os.getpid())) as pool:
        running: set = set()

        def fill() -> None:
            while len(running) < 2 * workers and keep_going():
                item = next(queue, None)
                if item is None:
                    return
                running.add(pool.submit(process_item, source, item, settings, out_dir))

        fill()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                running.discard(future)
                yield future.result()
            fill()


def run_ray(source, items, settings, out_dir, workers, address,
             keep_going: Callable[[], bool] = _always) -> Iterator[dict]:
    try:
        import ray
    except ImportError as exc:
        raise CopDataError("the Ray executor needs Ray: pip install 'ray>=2.9'") from exc
    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"num_cpus": max(workers, 1)}
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING, **kwargs)
    remote = ray.remote(num_cpus=1)(process_item)
    source_ref = ray.put(source)
    queue = iter(items)
    pending: list = []
    in_flight = 2 * max(workers, int(ray.cluster_resources().get("CPU", 1)))

    def fill() -> None:
        while len(pending) < in_flight and keep_going():
            item = next(queue, None)
            if item is None:
                return
            pending.append(remote.remote(source_ref, item, settings, out_dir))

    fill()
    while pending:
        done, pending[:] = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])
        fill()
