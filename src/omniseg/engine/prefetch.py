"""Loading overlapped with computing: a loader iterated by a background thread, batches ahead of the training step.

With the data loader in the main process, every step waits while the next batch is read, cropped and collated.
:class:`PrefetchLoader` has a thread do that while the step computes (torch's kernels release the interpreter lock),
up to ``depth`` batches ahead, and counts the seconds the training loop still waits for a batch (``wait_seconds``:
the run's ``loader_wait_share``). The dataset's random draws must not touch torch's global random state from the
thread: :class:`~omniseg.data.transforms.TransformedDataset` draws omniseg's steps from their own seeded generators.
"""

from __future__ import annotations

import queue
import threading
import time

_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _fill(source, batches: queue.Queue, stop: threading.Event) -> None:
    try:
        for batch in source:
            while not stop.is_set():
                try:
                    batches.put(batch, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        batches.put(_END)
    except BaseException as error:  # handed to the training loop, which raises it
        batches.put(_Failure(error))


class _PrefetchIterator:
    def __init__(self, loader: PrefetchLoader) -> None:
        self.loader = loader
        self.batches: queue.Queue = queue.Queue(maxsize=loader.depth)
        self.stop = threading.Event()
        self.started = False

    def __iter__(self):
        return self

    def __next__(self):
        if not self.started:  # at the first request, not before: a sampler may read the resumed step count then
            # the thread holds the queue and the event, never this iterator: dropping the iterator stops it
            threading.Thread(target=_fill, args=(iter(self.loader.loader), self.batches, self.stop), daemon=True,
                             name="omniseg-prefetch").start()
            self.started = True
        start = time.perf_counter()
        item = self.batches.get()
        self.loader.wait_seconds += time.perf_counter() - start
        if item is _END:
            raise StopIteration
        if isinstance(item, _Failure):
            raise item.error
        return item

    def __del__(self) -> None:
        self.stop.set()


class PrefetchLoader:
    """Iterate ``loader`` (a DataLoader, or any iterable) ``depth`` batches ahead in a background thread.
    ``wait_seconds`` sums the time the consumer waited for batches, over all iterations."""

    def __init__(self, loader, depth: int = 2) -> None:
        if depth < 1:
            raise ValueError(f"a prefetch depth is at least 1, got {depth}")
        self.loader, self.depth = loader, depth
        self.wait_seconds = 0.0

    def __iter__(self) -> _PrefetchIterator:
        return _PrefetchIterator(self)
