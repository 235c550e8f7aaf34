"""The one root of expected rejections, for everything outside the spec.

Every rejection of outside input derives from `InvalidInput`; anything else is a bug. A service
writes one ``except InvalidInput`` around hostile data (an RPC request, an L1 event, a batch, a
peer's checkpoint) and lets every other exception crash loudly. The CLI turns `InvalidInput` into
``error: …`` and exit status 2, and any other exception into a traceback and exit status 70
(`optinode/cli/main.py`).

The tree (each class lives next to the code that raises it)::

    InvalidInput                      optinode.spec.errors (the spec is pure, so the root is defined there)
    ├── InvalidTransaction            spec.errors      a transaction breaks a validity rule (carries its ErrorCode)
    ├── DecodeError                   spec.errors      a batch record does not decode (becomes Malformed)
    ├── WitnessError                  spec.errors      a one-step witness does not authenticate
    ├── InvalidState                  spec.errors      a state from outside is not whole/encodable (spec.state_check)
    ├── InvalidGenesis                spec.genesis     a genesis breaks check_genesis
    ├── InvalidJson                   spec.serde       JSON that is not a spec value: a field of the wrong type, out of its bound, or bytes not as 0x-hex
    ├── InvalidMove                   spec.game        a dispute-game move the contract would revert
    ├── BondRuleError                 spec.bonds       a bond call (append, open, finalize, forfeit, withdraw) the contracts would revert
    ├── ConfigError                   optinode.config  a TOML config that cannot be read or validated
    │   └── BadPlan                   devnet.runner    an unknown devnet scenario, or an order that cannot run
    ├── InputError                    cli.spec_apply   a file or stdin given to `optinode spec apply`
    ├── DemoConfigError               cli.demo         a config the demo cannot narrate
    ├── UnknownLog                    l1.events        an L1 log of a followed contract that matches no ABI event
    ├── DeploymentError               l1.deploy        a deployment file, or a deploy the config and the chain refuse
    ├── Rejected                      services.engine  a submitted transaction the spec refuses (carries its ErrorCode)
    ├── FaultRefused                  services.faults  a fault-injection switch on a non-devnet chain, or an unknown point
    ├── ClaimUnavailable              services.claims  a withdrawal claim for a batch or account the store does not have
    ├── AdminRpcError                 services.admin_rpc  a bad admin JSON-RPC request (mapped to its JSON-RPC code)
    ├── RpcError                      services.rpc_params  a public JSON-RPC request refused: envelope, params (-32602 naming the field), or intake/spec (-32000)
    ├── SourceError                   services.http_price  a price API's answer that cannot be had or verified (nothing is signed)
    ├── IntakeRejected                exchange.mempool  an order turned away at intake (limits, shape, signature, nonce; spec ErrorCode or exchange Reason)
    └── UnknownOrder                  exchange.matching  a cancel naming no live order of that account

Not in the tree, on purpose: `spec.errors.EncodeError` (our own code built a value the batch format
cannot hold), the L1 layer's errors (`AnvilError`, `ArtifactError`, reverts of our own
transactions) and the store's (`optinode.store.errors.StoreError`: the node's own data directory is
unusable, which an operator must fix): those are bugs or environment failures, not someone else's
bad input to turn away and carry on from.

Service errors go here as they are written: one subclass per kind of hostile input a service turns
away (for example an ``RpcInvalidParams(InvalidInput)`` for the JSON-RPC API, mapped to code -32602),
defined in this module or in the service's own module and added to the tree above.
tests/test_error_root.py imports every module and fails on an exception class that has not chosen a
side (listed under the root, or named as a bug class there).
"""

from __future__ import annotations

from optinode.spec.errors import InvalidInput

__all__ = ["InvalidInput"]
