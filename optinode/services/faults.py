"""Fault injection: "crash at a named point", behind one switch that only a devnet accepts.

    faults = Faults.parse("proposer.submitted:2", chain_id=31337)   # the 2nd time that point is reached
    faults.point("proposer.submitted")                               # SIGKILLs this process there

The switch is the sequencer's ``--crash-at NAME[:N]`` option (or ``OPTINODE_CRASH_AT``); on a chain
that is not a devnet it is refused at start-up, so a production node never carries an armed fault.
The points (docs/sequencer.md lists what each interrupts):

- ``engine.applied``   a command applied in memory, its log entry not yet written
- ``engine.logged``    log entries durable, acknowledgements not yet sent
- ``engine.cut``       a batch and its checkpoint durable, not yet handed to the proposer
- ``engine.rebuilding`` a rebuild (a discard on L1, a stale batch) computed in memory, its journal rewrite not yet written
- ``engine.rebuilt``   the rebuild's rewrite durable, the proposer not yet told
- ``proposer.before_submit`` / ``proposer.submitted``   around handing a batch to the L1 sender
- ``proposer.finalize_submitted``   a finalize transaction sent

SIGKILL, not an exception: nothing gets to clean up, as in a power cut or the OOM killer.

The behaviour faults, ``--fault KIND:…`` (devnet only as well): ``corrupt:B:K`` (the sequencer posts a
wrong root and defends it), ``challenge:B:K`` (the verifier challenges an honest batch) and
``censor:0xADDRESS`` (the sequencer ignores an L1 address: no answer to its submissions, and its forced
requests are never consumed, so the forced queue stalls behind them until the Bridge can be frozen;
docs/devnet.md, the ``censorship`` scenario).
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

from optinode.errors import InvalidInput
from optinode.spec.constants import ADDRESS_LEN
from optinode.spec.state import State

POINTS = (
    "engine.applied",
    "engine.logged",
    "engine.cut",
    "engine.rebuilding",
    "engine.rebuilt",
    "proposer.before_submit",
    "proposer.submitted",
    "proposer.finalize_submitted",
)
DEVNET_CHAIN_IDS = frozenset({31337, 1337})


class FaultRefused(InvalidInput):
    """A fault switch on a chain that is not a devnet, or an unknown point."""


FAULT_KINDS = ("corrupt", "challenge", "censor")


def _devnet_switch(option: str, what: str, spec: str, names: tuple[str, ...], chain_id: int) -> tuple[str, str]:
    """Refuse a fault switch off a devnet or with an unknown name; return (name, the rest after ':')."""
    if chain_id not in DEVNET_CHAIN_IDS:
        raise FaultRefused(f"fault injection ({option} {spec}) is refused on chain {chain_id}: devnets only")
    name, _, rest = spec.partition(":")
    if name not in names:
        raise FaultRefused(f"{option}: unknown {what} {name!r}; {what}s: {', '.join(names)}")
    return name, rest


def _address(spec: str, text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x")) if text.startswith("0x") else b""
    except ValueError:
        raw = b""
    if len(raw) != ADDRESS_LEN:
        raise FaultRefused(f"--fault {spec}: expected censor:0xADDRESS with a 20-byte 0x-hex address")
    return raw


@dataclass
class Faults:
    crash_at: str | None = None
    after: int = 1  # crash the after-th time the point is reached
    hits: dict[str, int] = field(default_factory=dict)
    # ``corrupt:B:K`` (sequencer): batch B's state gains one unit of collateral on account 0 after
    # transaction K (a wrong root from index K + 1 on); the proposer defends those roots. Several
    # batches: ``corrupt:1:2,corrupt:2:0``. It applies to the batches as first cut, not to those a
    # rebuild cuts after L1 discarded them (docs/sequencer.md, "Rebuilding batches").
    corrupt: dict[int, int] | None = None
    # ``challenge:B:K`` (verifier): challenge batch B whatever its verdict, with roots wrong from K + 1 on.
    challenge: tuple[int, int] | None = None
    # ``censor:0xADDRESS`` (sequencer): the addresses it censors (20 bytes each; several: ``censor:0x…,censor:0x…``).
    censor: frozenset[bytes] = frozenset()

    def with_fault(self, spec: str | None, *, chain_id: int) -> Faults:
        """Add a ``--fault KIND:B:K[,KIND:B:K…]`` switch (devnet only)."""
        if not spec:
            return self
        if "," in spec:
            for one in spec.split(","):
                self.with_fault(one, chain_id=chain_id)
            return self
        kind, rest = _devnet_switch("--fault", "kind", spec, FAULT_KINDS, chain_id)
        if kind == "censor":
            self.censor = self.censor | {_address(spec, rest)}
            return self
        try:
            batch, tx = (int(v) for v in rest.split(":"))
        except ValueError:
            raise FaultRefused(f"--fault {spec}: expected {kind}:BATCH:TX with two integers") from None
        if batch < 1 or tx < 0:
            raise FaultRefused(f"--fault {spec}: batch >= 1 and tx >= 0")
        if kind == "corrupt":
            self.corrupt = {**(self.corrupt or {}), batch: tx}
        else:
            self.challenge = (batch, tx)
        return self

    def ignores(self, state: State, command: Any) -> bool:
        """True when ``command`` (a submitted transaction or order-book command) acts for an account a
        censored address owns: the censoring sequencer leaves it unanswered."""
        if not self.censor:
            return False
        order = getattr(command, "order", None)  # a Placement
        account_id = getattr(order if order is not None else command, "account_id", None)  # Withdraw, cancels
        account = state.accounts.get(account_id) if isinstance(account_id, int) else None
        return account is not None and account.owner in self.censor

    def censors_forced(self, state: State, requester: bytes, account_id: int) -> bool:
        """True when the forced request of ``requester`` on ``account_id`` is one the censoring
        sequencer never consumes (it stalls the forced queue: entries are consumed in order)."""
        account = state.accounts.get(account_id)
        return requester in self.censor or (account is not None and account.owner in self.censor)

    def tamper_after(self, batch_index: int) -> int | None:
        """The transaction after which batch ``batch_index``'s state is corrupted (None: not this one)."""
        return None if self.corrupt is None else self.corrupt.get(batch_index)

    @classmethod
    def parse(cls, spec: str | None, *, chain_id: int) -> Faults:
        if not spec:
            return cls()
        name, count = _devnet_switch("--crash-at", "point", spec, POINTS, chain_id)
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
