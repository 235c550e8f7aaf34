"""Write optinode/spec/well_formed.py: the range checks of `transition.is_well_formed`, rendered
from the field table (optinode/spec/fields.py). Run after changing a field or a bound in types.py:

    PYTHONPATH=. .venv/bin/python scripts/generate_well_formed.py

tests/spec/test_fields.py fails while the committed file differs from what the table renders.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import get_args

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optinode.spec.fields import render_range_checks  # noqa: E402
from optinode.spec.types import Malformed, Transaction  # noqa: E402

TARGET = Path(__file__).resolve().parents[1] / "optinode" / "spec" / "well_formed.py"


def main() -> None:
    source = render_range_checks(tuple(t for t in get_args(Transaction) if t is not Malformed))
    TARGET.write_text(source)
    print(f"wrote {TARGET.relative_to(Path.cwd()) if TARGET.is_relative_to(Path.cwd()) else TARGET}")


if __name__ == "__main__":
    main()
