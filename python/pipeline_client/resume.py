"""Where one rank stands in the pipeline's stream, for an exact resume (docs/transport.md,
"Resume"); needs neither pyarrow nor torch.

Every batch the socket and Flight sinks send carries (docs/arrow-schema.md, "Batch metadata"):
pipeline.batch, its index in the whole stream (batch i goes to rank i mod world);
pipeline.position, the source position right after it; pipeline.round_start, the state at the
start of its round (the world batches from a multiple of world on), in the format of
`pipeline run --resume` files. A rank's state is the last batch its trainer took: the producer
resumes from that batch's round start, which every rank of a lock-step trainer holds alike, and
each rank drops the batches of that round it already has.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

STATE_VERSION = 1
META_BATCH = "pipeline.batch"
META_POSITION = "pipeline.position"
META_ROUND_START = "pipeline.round_start"


class ResumeMismatch(RuntimeError):
    """The producer's stream cannot continue this rank's state exactly: it resumed past the
    rank's last batch (samples would be lost), sends another stream (another config or world
    size), or sends no positions."""


@dataclass
class RankState:
    """One rank's place in the stream. next_batch is the stream index of the batch it needs
    next; position and round_start are those of the last batch it took (None before any)."""

    rank: int
    world_size: int
    next_batch: int
    position: dict | None = None
    round_start: dict | None = None
    positioned: bool = True  # False once a batch without positions was taken: no checkpoint

    @classmethod
    def fresh(cls, rank: int, world_size: int) -> "RankState":
        return cls(rank, world_size, next_batch=rank)

    def state_dict(self) -> dict[str, Any]:
        """The state to checkpoint (torchdata's Stateful protocol): plain JSON-able values."""
        if not self.positioned:
            raise RuntimeError("the producer's batches carry no positions (a sink used outside `pipeline run`, "
                               "or an older pipeline): this rank's place in the stream cannot be checkpointed")
        return {"version": STATE_VERSION, "rank": self.rank, "world_size": self.world_size,
                "next_batch": self.next_batch, "position": self.position, "round_start": self.round_start}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], rank: int, world_size: int) -> "RankState":
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"pipeline dataset state version {state.get('version')!r}, this client reads {STATE_VERSION}")
        if (state["rank"], state["world_size"]) != (rank, world_size):
            raise ValueError(f"the state is rank {state['rank']} of {state['world_size']}'s, this is rank {rank} of "
                             f"{world_size}: restore each rank's own state, with the same world size")
        return cls(rank, world_size, int(state["next_batch"]), state["position"], state["round_start"])

    def resume_state(self) -> dict | None:
        """What `pipeline run --resume FILE` takes to continue the whole run for every rank, None
        for a rank that has taken nothing (the producer starts from the beginning)."""
        return self.round_start

    def took(self, meta: Mapping[str, str]) -> None:
        """Records that the trainer took the batch with this metadata."""
        if META_BATCH not in meta:
            self.positioned = False
            self.next_batch += self.world_size
            return
        self.next_batch = int(meta[META_BATCH]) + self.world_size
        self.position = json.loads(meta[META_POSITION])
        self.round_start = json.loads(meta[META_ROUND_START])

    def keep(self, meta: Mapping[str, str]) -> bool:
        """Whether a batch the producer sent is new to this rank (True, and the rank now needs the
        one after it) or one it took before the state was saved (False: drop it). Raises
        ResumeMismatch when batches this rank needs were never sent."""
        if META_BATCH not in meta:
            if self.round_start is not None:
                raise ResumeMismatch("the producer sends no positions: it cannot have resumed where this rank's "
                                     "state stopped")
            return True
        seq = int(meta[META_BATCH])
        if seq % self.world_size != self.rank:
            raise ResumeMismatch(f"rank {self.rank} of {self.world_size} got batch {seq}: the producer deals to "
                                 "another world size")
        if seq == self.next_batch - self.world_size and self.position is not None:
            # The last batch the rank took, sent again: it must end where it ended then.
            if json.loads(meta[META_POSITION]) != self.position:
                raise ResumeMismatch(f"batch {seq} ends at {meta[META_POSITION]} now, at {json.dumps(self.position)} "
                                     "in the checkpoint: the producer runs another config or data")
        if seq < self.next_batch:
            return False
        if seq > self.next_batch:
            raise ResumeMismatch(f"rank {self.rank} needs batch {self.next_batch} next, the producer sent {seq}: it "
                                 f"resumed past this rank's checkpoint and batches {self.next_batch}..{seq - 1} would be "
                                 f"lost; start it with --resume from this rank's state "
                                 f"({json.dumps(self.round_start)})")
        self.next_batch = seq + self.world_size
        return True


def write_resume_file(state: Mapping[str, Any], path: str) -> bool:
    """Writes the `pipeline run --resume` file for a PipelineDataset state (state_dict(), or its
    entry in a StatefulDataLoader's), atomically; returns False, writing nothing, for a state
    that has taken no batch (start the producer without --resume)."""
    resume = state.get("round_start")
    if resume is None:
        return False
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(resume, f)
        f.write("\n")
    os.replace(tmp, path)
    return True
