"""What every node command (`optinode sequencer`, `optinode verifier run`) loads first: the config, the
logging it chooses, the deployment it must match and the L1 endpoint. Raises `InvalidInput`; the
command reports it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LOG_FORMAT_HELP = "Log lines as 'human' text or 'json' (one object per line; default: node.log_format)."


def load_node_inputs(config: Path, deployment: Path, rpc: str | None, log_format: str | None = None) -> tuple[Any, Any, str]:
    """(config, deployment, L1 URL); the config must be the deployed one. Logging is configured once
    here, before the node starts: ``log_format`` (the CLI's ``--log-format``) over ``node.log_format``."""
    from optinode.config import ConfigError, load_config, resolve_l1_rpc
    from optinode.l1.deploy import load_deployment
    from optinode.logs import FORMATS, configure

    if log_format is not None and log_format not in FORMATS:
        raise ConfigError(f"--log-format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    loaded = load_config(config)
    configure(log_format or loaded.node.log_format)
    deployed = load_deployment(deployment)
    deployed.genesis(loaded)  # refuses a config that is not the deployed one
    return loaded, deployed, resolve_l1_rpc(loaded.node, rpc)
