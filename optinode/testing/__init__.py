"""Test and tooling helpers (not part of the spec): a scriptable world of signed accounts."""
