"""Persistent storage: LevelDB (plyvel) behind a small key-value interface, plus an in-memory backend."""
