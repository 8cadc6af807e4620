"""A background thread that fills a bounded queue: the video decoders of extraction (ClipStream) and of a
live stream (LiveReader) are both one.

The thread runs `produce()`; whatever it raises is put on the queue for the consumer to re-raise, then
END. `put` waits while the queue is full (so memory stays bounded) until the item fits or `close()` is
called; `close()` stops the thread and frees what it queued.
"""
from __future__ import annotations

import queue
import threading

END = object()  # the producer's last queue item


class Producer:
    def __init__(self, maxsize: int, name: str):
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def produce(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        try:
            self.produce()
        except BaseException as exc:  # handed to the consumer, which raises or reports it
            self.put(exc)
        self.put(END)

    def put(self, item) -> None:
        """Queue `item`, waiting while the queue is full, unless the producer is being closed."""
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self, timeout: float | None = None) -> None:
        """Stop the thread (also mid-way, after a failure) and free what it queued."""
        self.stopping.set()
        self._thread.join(timeout)
        while not self.queue.empty():
            self.queue.get_nowait()
