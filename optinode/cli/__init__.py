"""Command-line interface (typer): thin commands that build config and call trio.run."""
