"""A torch IterableDataset over one rank's share of the pipeline's stream."""

from __future__ import annotations

import contextlib
import copy
import os
import queue
import tempfile
import threading
from typing import IO, Any, Callable, Iterator, Mapping, TypeVar

import torch

from . import resume, torch_io
from .producer import Command, Producer

T = TypeVar("T")


def default_rank_world() -> tuple[int, int]:
    """This process's rank and world size: from torch.distributed when it is initialised, else
    from torchrun's RANK / WORLD_SIZE, else 0 of 1."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class PipelineDataset(torch.utils.data.IterableDataset):
    """Yields one dict per batch: a uint8 tensor [rows, (views,) H, W, 3] per view group (e.g.
    "q", "k"), "label" and "index" (int64). The tensors are pinned when CUDA is available, so
    `torch_io.to_device(batch, "cuda")` copies them asynchronously; then `torch_io.normalize`.

    A background thread reads, converts and pins up to `prefetch` batches ahead: a bounded
    queue, so a slow trainer still slows the producer. Iterate it directly, or through
    DataLoader(ds, batch_size=None, num_workers=0) (or torchdata's StatefulDataLoader): the
    batches are already made, and worker processes would each claim the same rank.

    Exact resume (torchdata's Stateful protocol): state_dict() is this rank's place in the stream
    after the last batch the training loop took; load_state_dict() restores it, and the next
    iteration continues from there, dropping the batches the rank already had. Every rank saves
    and restores its own state. The producer must resume at the state's round start: with
    `producer` (a command such as pipeline_run(...)), rank `producer_rank` starts it for each
    iteration, with `--resume` when restored; otherwise start `pipeline run ... --resume FILE`
    yourself, FILE written by resume.write_resume_file(state). docs/transport.md, "Resume".
    """

    def __init__(self, address: str, rank: int | None = None, world_size: int | None = None,
                 pin_memory: bool | None = None, prefetch: int = 2,
                 shapes: dict[str, tuple[int, ...]] | None = None, timeout: float = 60.0,
                 token: str | None = None, token_file: str | None = None, ca_file: str | None = None,
                 producer: Command | None = None, producer_rank: int = 0,
                 producer_env: Mapping[str, str] | None = None, producer_stderr: IO | None = None):
        super().__init__()
        r, w = default_rank_world()
        self.address = address
        self.rank = r if rank is None else rank
        self.world_size = w if world_size is None else world_size
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.prefetch = prefetch
        self.shapes = shapes
        self.timeout = timeout
        self._security = dict(token=token, token_file=token_file, ca_file=ca_file)  # see stream.open_batches
        self.producer = producer
        self.producer_rank = producer_rank
        self.producer_env = producer_env
        self.producer_stderr = producer_stderr
        self._state = resume.RankState.fresh(self.rank, self.world_size)

    def state_dict(self) -> dict[str, Any]:
        """This rank's place in the stream: after the last batch the loop took."""
        return self._state.state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restores a state_dict() of the same rank and world size; the next iteration resumes."""
        self._state = resume.RankState.from_state_dict(state_dict, self.rank, self.world_size)

    def _batches(self, restored: resume.RankState) -> Iterator[tuple[dict[str, torch.Tensor], dict[str, str]]]:
        from . import arrays, stream  # pyarrow is needed from here on

        for batch, meta in stream.open_batches_with_metadata(self.address, self.rank, self.world_size, self.timeout,
                                                                **self._security):
            if restored.keep(meta):  # else: taken before the checkpoint, sent again by the resumed producer
                yield torch_io.host_tensors(arrays.batch_arrays(batch, self.shapes), self.pin_memory), meta

    def _start_producer(self, stack: contextlib.ExitStack) -> None:
        if self.producer is None or self.rank != self.producer_rank:
            return
        cmd = self.producer
        d = stack.enter_context(tempfile.TemporaryDirectory(prefix="pipeline-resume-"))
        path = os.path.join(d, "resume.json")
        if resume.write_resume_file({"round_start": self._state.resume_state()}, path):
            cmd = f"{cmd} --resume {path}" if isinstance(cmd, str) else [*cmd, "--resume", path]
        stack.enter_context(Producer(cmd, env=self.producer_env, stderr=self.producer_stderr))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        if info is not None and info.num_workers > 1:
            raise RuntimeError("PipelineDataset: use num_workers=0; each worker would claim the same rank")
        return self._iterate()

    def _iterate(self) -> Iterator[dict[str, torch.Tensor]]:
        restored = copy.deepcopy(self._state)  # the reader thread's own copy
        with contextlib.ExitStack() as stack:
            self._start_producer(stack)
            batches = prefetched(lambda: self._batches(restored), self.prefetch)
            stack.callback(batches.close)  # first out: stop reading before stopping the producer
            for tensors, meta in batches:
                self._state.took(meta)
                yield tensors


def prefetched(make: Callable[[], Iterator[T]], depth: int) -> Iterator[T]:
    """Runs the iterator make() on a thread, at most depth items ahead of the caller. Errors
    reach the caller; leaving early stops the thread, which closes the iterator."""
    q: queue.Queue = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def run():
        it = make()
        try:
            for item in it:
                if not put(item):
                    break
            else:
                put(done)
        except BaseException as e:  # handed to the caller, which re-raises it
            put(e)
        finally:
            close = getattr(it, "close", None)
            if close:
                close()

    thread = threading.Thread(target=run, name="pipeline-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # The thread notices once its read returns: at the next batch, or when the producer
        # ends or is stopped. Do not hang shutdown on a producer that stalls instead.
        thread.join(timeout=30)
