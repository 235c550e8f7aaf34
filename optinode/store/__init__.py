"""Persistent storage: LevelDB (plyvel) behind a small key-value interface, plus an in-memory backend.

- `keys`   — every key layout (prefix byte + big-endian fixed-width integers); nothing else builds keys;
- `kv`     — the interface (`KV`, `WriteBatch`, `Snapshot`) and the format marker check;
- `db`     — `open_store(path, identity=…)`: LevelDB through plyvel;
- `memory` — `open_memory()`: the same interface in memory, for unit tests;
- `codec`  — `Codec(StructType)`: msgpack encoding of stored values, built once per type;
- `errors` — `StoreError` and its kinds, each a one-line message an operator can act on.
"""
