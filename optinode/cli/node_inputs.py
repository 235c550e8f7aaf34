"""What every node command (`optinode sequencer`, `optinode verifier run`) loads first: logging, the
config, the deployment it must match and the L1 endpoint. Raises `InvalidInput`; the command reports it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any


def load_node_inputs(config: Path, deployment: Path, rpc: str | None) -> tuple[Any, Any, str]:
    """(config, deployment, L1 URL); the config must be the deployed one."""
    from optinode.config import load_config, resolve_l1_rpc
    from optinode.l1.deploy import load_deployment

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loaded = load_config(config)
    deployed = load_deployment(deployment)
    deployed.genesis(loaded)  # refuses a config that is not the deployed one
    return loaded, deployed, resolve_l1_rpc(loaded.node, rpc)
