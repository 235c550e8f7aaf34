"""The sequencer on anvil with its public API on (the chain and users come from tests/l1/sequencer)."""

from __future__ import annotations

import pytest

from tests.l1.sequencer.conftest import chain, users  # noqa: F401 - fixtures


@pytest.fixture
def api_node(chain, tmp_path):  # noqa: F811 - the chain fixture
    seq = chain.start_sequencer(tmp_path / "seq", api=True)
    yield seq
    code = seq.stop()
    assert code == 0, f"the sequencer did not shut down cleanly ({code}):\n{seq.log_tail()}"
