"""A named point where a test makes the validator die as a power cut would.

Some crashes matter only at one instant: right after the write-ahead log made
a precommit durable and before the precommit left the process, say.  A test
cannot hit that instant from outside, so, as CometBFT does with its fail
points, the validator itself exits there when its environment asks it to:
``SOMNODE_FAILPOINT=signed-precommit@5`` exits (status 86, nothing flushed,
nothing closed) the first time the host has durably written a precommit for
a value at height 5 or above.  Unset, nothing happens.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from consensus.messages import Message, MessageType, Vote

log = logging.getLogger(__name__)

ENVIRONMENT_VARIABLE = "SOMNODE_FAILPOINT"
EXIT_STATUS = 86
SIGNED_PRECOMMIT = "signed-precommit"
POINTS = frozenset({SIGNED_PRECOMMIT})


@dataclass(frozen=True, slots=True)
class Failpoint:
    point: str
    min_height: int

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Failpoint | None:
        text = environ.get(ENVIRONMENT_VARIABLE)
        if not text:
            return None
        point, _, height = text.partition("@")
        if point not in POINTS or (height and not height.isdigit()):
            raise ValueError(f"{ENVIRONMENT_VARIABLE}={text!r}: expected one of {sorted(POINTS)}, "
                             "optionally followed by @HEIGHT")
        return cls(point, int(height or 0))

    def signed(self, message: Message) -> None:
        """The host has durably written ``message``, which has not left the process yet."""
        if self.point != SIGNED_PRECOMMIT or message.height < self.min_height:
            return
        if isinstance(message, Vote) and message.type == MessageType.PRECOMMIT and message.value_id is not None:
            log.critical("failpoint.exit point=%s height=%d round=%d value=%s", self.point, message.height,
                         message.round, message.value_id.hex())
            sys.stderr.flush()
            os._exit(EXIT_STATUS)
