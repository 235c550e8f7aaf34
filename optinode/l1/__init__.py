"""Talking to Ethereum (L1): contract artifacts and bindings, transactions, event following, anvil."""
