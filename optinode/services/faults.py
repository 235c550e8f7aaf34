"""Fault injection: "crash at a named point", behind one switch that only a devnet accepts.

    faults = Faults.parse("proposer.submitted:2", chain_id=31337)   # the 2nd time that point is reached
    faults.point("proposer.submitted")                               # SIGKILLs this process there

The switch is the sequencer's ``--crash-at NAME[:N]`` option (or ``OPTINODE_CRASH_AT``); on a chain
that is not a devnet it is refused at start-up, so a production node never carries an armed fault.
The points (docs/sequencer.md lists what each interrupts):

- ``engine.applied``   a command applied in memory, its log entry not yet written
- ``engine.logged``    log entries durable, acknowledgements not yet sent
- ``engine.cut``       a batch and its checkpoint durable, not yet handed to the proposer
- ``proposer.before_submit`` / ``proposer.submitted``   around handing a batch to the L1 sender
- ``proposer.finalize_submitted``   a finalize transaction sent

SIGKILL, not an exception: nothing gets to clean up, as in a power cut or the OOM killer.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field

from optinode.errors import InvalidInput

POINTS = (
    "engine.applied",
    "engine.logged",
    "engine.cut",
    "proposer.before_submit",
    "proposer.submitted",
    "proposer.finalize_submitted",
)
DEVNET_CHAIN_IDS = frozenset({31337, 1337})


class FaultRefused(InvalidInput):
    """A fault switch on a chain that is not a devnet, or an unknown point."""


@dataclass
class Faults:
    crash_at: str | None = None
    after: int = 1  # crash the after-th time the point is reached
    hits: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str | None, *, chain_id: int) -> Faults:
        if not spec:
            return cls()
        if chain_id not in DEVNET_CHAIN_IDS:
            raise FaultRefused(f"fault injection (--crash-at {spec}) is refused on chain {chain_id}: devnets only")
        name, _, count = spec.partition(":")
        if name not in POINTS:
            raise FaultRefused(f"--crash-at: unknown point {name!r}; points: {', '.join(POINTS)}")
        try:
            after = int(count) if count else 1
        except ValueError:
            raise FaultRefused(f"--crash-at {spec}: the count after ':' must be an integer") from None
        if after < 1:
            raise FaultRefused(f"--crash-at {spec}: the count must be >= 1")
        return cls(name, after)

    def point(self, name: str) -> None:
        if self.crash_at != name:
            return
        self.hits[name] = self.hits.get(name, 0) + 1
        if self.hits[name] >= self.after:
            print(f"fault injection: crashing at {name} (hit {self.hits[name]})", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


NO_FAULTS = Faults()
