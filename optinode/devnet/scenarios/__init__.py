"""The devnet's scenarios, one module each: ``NAME``, ``SUMMARY`` and ``async def run(net) -> outcome``
(the outcome holds what the scenario measured; every check it makes raises `ScenarioFailed` on failure).

| name | shows | module |
| --- | --- | --- |
| ``honest`` | a withdrawal's whole life: deposit, trade, batch, verification, window, finality, claim | `honest` |
| ``bad-batch`` | a malicious sequencer's wrong root caught by the verifier's game on L1, the rollback | `bad_batch` |
| ``censorship`` | a censored user's forced withdrawal, the freeze and the escape from L1 data alone | `censorship` |
"""

from __future__ import annotations

from types import ModuleType

from optinode.devnet.scenarios import bad_batch, censorship, honest

SCENARIOS: dict[str, ModuleType] = {m.NAME: m for m in (honest, bad_batch, censorship)}
ALL = tuple(SCENARIOS)  # the order `all` runs them in: censorship freezes the rollup, so it comes last
