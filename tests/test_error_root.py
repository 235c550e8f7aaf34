"""One root for every expected rejection of outside input (optinode/errors.py).

Every module of optinode is imported and every exception class it defines is collected. Each one must
have chosen a side: derive from `InvalidInput` (bad input: reported, never a crash) or be named in
NOT_INPUT below with the reason it is a bug or an environment failure. A new exception class that does
neither fails this test, and so does one missing from the tree documented in optinode/errors.py.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import optinode
import optinode.errors
from optinode.errors import InvalidInput

# Exception classes that are deliberately not InvalidInput, and why.
NOT_INPUT = {
    "optinode.spec.errors.EncodeError": "our own code built a value the batch format cannot hold",
    "optinode.cli.demo.DemoInvariantBroken": "a demo check failed: a spec bug",
    "optinode.l1.anvil.AnvilError": "the local L1 process could not be started or reached",
    "optinode.l1.anvil.AnvilNotFound": "anvil is not installed",
    "optinode.l1.artifacts.ArtifactError": "the compiled contracts are missing or stale",
    "optinode.l1.contracts.Reverted": "one of our own L1 transactions reverted",
    "optinode.l1.osp.OneStepReverted": "the one-step prover reverted a call we made",
    # The node's own data directory: an operator's problem to fix (the message says what to do), not
    # someone else's input to turn away and carry on from.
    "optinode.store.errors.StoreError": "the data directory cannot be used as it is",
    "optinode.store.errors.StoreCorrupt": "LevelDB reports corruption in our own data",
    "optinode.store.errors.StoreForeign": "the directory is not this node's store",
    "optinode.store.errors.StoreLocked": "another process holds the database",
    "optinode.store.errors.StoreClosed": "the store was used after close(): a bug",
    "optinode.l1.rpc.RpcError": "the L1 endpoint answered a call of ours with an error",
    "optinode.l1.rpc.RpcUnavailable": "the L1 endpoint stayed unreachable for the whole retry budget",
    "optinode.l1.rpc._Temporary": "internal: one failed HTTP attempt, retried",
    "optinode.l1.follower.FollowerCritical": "an L1 reorg deeper than the recorded window: the operator must resync",
    "optinode.l1.sender.SendRejected": "a transaction of ours would revert (eth_estimateGas refused it)",
    "optinode.services.journal.ReplayMismatch": "the sequencer's own log does not replay to what it recorded",
    "optinode.testing.seqnode.AdminError": "test tooling: the sequencer under test answered with a JSON-RPC error",
    "optinode.services.batch_fetcher.BatchUnavailable": "the L1 endpoint does not serve the append transaction the event names (yet): retried",
    "optinode.services.watch_rpc.NodeDown": "nothing answers at the verifier's watchtower URL (the CLI may fall back to status.json)",
    "optinode.services.watch_rpc.StatusRefused": "the running verifier answered optinode_status with an error",
    "optinode.services.engine.EngineCritical": "an L1 reorg removed a queue entry the log consumed: the operator must act",
    "optinode.devnet.nodes.NodeFailed": "a devnet node exited or never became ready (its log says why): a bug or the environment",
    "optinode.devnet.proofs.ProofMismatch": "the state replayed from L1 does not give the root the Rollup finalized: a bug",
    "optinode.devnet.story.ScenarioFailed": "a devnet scenario's outcome broke a promise of the protocol (exit status 1)",
    "optinode.devnet.trader.ApiError": "devnet tooling: the sequencer answered a bot's request with a JSON-RPC error",
    # The intake's worker processes: our own code and our own processes, not anyone's input.
    "optinode.exchange.worker_pool.WorkerLost": "a worker process died holding the job (killed, out of memory): the caller re-runs it",
    "optinode.exchange.worker_pool.WorkerError": "our function raised in a worker and its exception did not pickle back: a bug",
    "optinode.exchange.worker_pool.WorkerPoolBroken": "replacement workers keep dying at start-up: the environment, the node stops",
}

# The expected rejections the issue names, wherever they live (a rename must keep them under the root).
NAMED = [
    "optinode.spec.errors.InvalidTransaction",
    "optinode.spec.errors.DecodeError",
    "optinode.spec.errors.WitnessError",
    "optinode.spec.errors.InvalidState",
    "optinode.spec.game.InvalidMove",
    "optinode.spec.genesis.InvalidGenesis",
    "optinode.spec.serde.InvalidJson",
    "optinode.config.ConfigError",
    "optinode.cli.spec_apply.InputError",
    "optinode.cli.demo.DemoConfigError",
]


def all_modules() -> list[str]:
    names = [info.name for info in pkgutil.walk_packages(optinode.__path__, "optinode.")]
    assert {"optinode.spec.transition", "optinode.cli.spec_apply", "optinode.cli.demo", "optinode.config"} <= set(names)
    return sorted(names)


def defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in all_modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                found[f"{name}.{value.__qualname__}"] = value
    return found


def resolve(dotted: str) -> type:
    module, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def test_the_root_is_defined_once_and_re_exported() -> None:
    from optinode.spec.errors import InvalidInput as in_spec

    assert optinode.errors.InvalidInput is in_spec
    # A plain Exception: an `except ValueError` elsewhere must not swallow bad input by accident.
    assert InvalidInput.__bases__ == (Exception,)


@pytest.mark.parametrize("dotted", NAMED)
def test_named_rejections_derive_from_the_root(dotted: str) -> None:
    assert issubclass(resolve(dotted), InvalidInput), f"{dotted} must derive from optinode.errors.InvalidInput"


def test_every_exception_class_has_chosen_a_side() -> None:
    undecided = [
        name
        for name, cls in defined_exceptions().items()
        if not issubclass(cls, InvalidInput) and name not in NOT_INPUT
    ]
    assert not undecided, (
        "exception classes that are neither InvalidInput nor listed as bugs in tests/test_error_root.py "
        f"NOT_INPUT: {undecided}"
    )


def test_bug_classes_are_not_input_errors() -> None:
    found = defined_exceptions()
    for name in NOT_INPUT:
        assert name in found, f"NOT_INPUT lists {name}, which no longer exists"
        assert not issubclass(found[name], InvalidInput), name


def test_the_documented_tree_is_complete() -> None:
    doc = optinode.errors.__doc__ or ""
    missing = [
        name
        for name, cls in defined_exceptions().items()
        if issubclass(cls, InvalidInput) and cls is not InvalidInput and cls.__name__ not in doc
    ]
    assert not missing, f"add these to the tree in optinode/errors.py: {missing}"
