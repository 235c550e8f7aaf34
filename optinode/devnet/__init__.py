"""The local devnet and its adversarial scenarios (`optinode devnet`, docs/devnet.md).

| module | what |
| --- | --- |
| `runner` | the command's body: anvil around one ``trio.run``, the scenarios, ``--keep-running``, Ctrl-C |
| `network` | `Devnet`: the deployment, the two node processes, L1 access in a worker thread, waits |
| `nodes` | `Node`: one ``optinode`` child process under trio (start, ready, stop) |
| `trader` | the bots: an L1 wallet (its own key) and a JSON-RPC client signing EIP-712 with eth-account |
| `proofs` | the last finalized state rebuilt from L1 calldata alone: withdrawal and escape proofs |
| `story` | the narrative and the checks that decide the exit status |
| `scenarios/` | ``honest``, ``bad-batch``, ``censorship`` (one module each) and the steps they share |
"""
