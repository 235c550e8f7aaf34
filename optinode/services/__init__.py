"""Long-running trio services, one per module, wired by bounded memory channels."""
