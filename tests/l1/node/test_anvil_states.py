"""anvil's persisted states go to a directory the launcher removes: killed anvils used to leave
1-3 GB each under ~/.foundry/anvil/tmp, and a session of test runs filled the disk."""

from __future__ import annotations

from pathlib import Path


from optinode.l1.anvil import find_anvil, run_anvil



def test_persisted_states_live_in_a_directory_removed_with_the_anvil() -> None:
    with run_anvil(binary=find_anvil()) as node:
        cmd = node.process.args
        cache = Path(cmd[cmd.index("--cache-path") + 1])
        assert cache.is_dir() and node.process.poll() is None  # anvil accepted the flag and runs
        node.process.kill()  # even a SIGKILLed anvil leaves nothing behind
        node.process.wait()
    assert not cache.exists()
