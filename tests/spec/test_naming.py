"""`compute_*` and `get_*` never raise an expected-invalid error (issue 6, item 2; consensus-specs' rule).

A mechanical check over the AST of every module of `optinode/spec/`: a function *may reject* when its
body raises an `InvalidInput` subclass, or calls a rejecting helper by name (`require`, `require_*`,
`check_*`, `process_*`, `state_transition`) or any spec function that may reject (transitively,
functions resolved by name across the spec's modules). No `compute_*`/`get_*` function may reject.
Checks belong in `process_*` or in `check_*`/`require_*` helpers, each one numbered rule.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import optinode.spec
from optinode.spec.errors import InvalidInput

SPEC_DIR = Path(optinode.spec.__file__).parent
REJECTING_PREFIXES = ("require", "check_", "process_")
REJECTING_NAMES = {"state_transition"}


def spec_modules() -> dict[str, ast.Module]:
    return {
        info.name: ast.parse((SPEC_DIR / f"{info.name}.py").read_text())
        for info in pkgutil.iter_modules([str(SPEC_DIR)])
    }


def invalid_classes() -> set[str]:
    """Names of the expected-invalid error classes the spec defines or imports."""
    names = set()
    for name in spec_modules():
        module = importlib.import_module(f"optinode.spec.{name}")
        for attr, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, InvalidInput):
                names.add(attr)
    return names


def called_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def raised_name(node: ast.Raise) -> str | None:
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    if isinstance(exc, ast.Name):
        return exc.id
    if isinstance(exc, ast.Attribute):
        return exc.attr
    return None


def rejecting_functions() -> dict[str, dict[str, str]]:
    """module -> function name -> why it may reject (one reason), for every spec function that may."""
    invalid = invalid_classes()
    functions: dict[tuple[str, str], ast.FunctionDef] = {}
    for module, tree in spec_modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                functions.setdefault((module, node.name), node)
    by_name: dict[str, list[tuple[str, str]]] = {}
    for key in functions:
        by_name.setdefault(key[1], []).append(key)

    def direct(node: ast.FunctionDef) -> tuple[str | None, set[str]]:
        calls = set()
        reason = None
        # a call through a parameter (a validator passed in) is not a call of a spec function by name
        parameters = {
            arg.arg
            for inner in ast.walk(node)
            if isinstance(inner, (ast.FunctionDef, ast.Lambda))
            for arg in ast.walk(inner.args)
            if isinstance(arg, ast.arg)
        }
        for sub in ast.walk(node):
            if isinstance(sub, ast.Raise) and sub.exc is not None and raised_name(sub) in invalid:
                reason = reason or f"raises {raised_name(sub)} (line {sub.lineno})"
            elif isinstance(sub, ast.Call) and (name := called_name(sub)) and name not in parameters:
                # a rejecting name the spec does not define (imported, a method) counts as rejecting;
                # one it defines is judged by its body (a nested `check_*` validator that returns a
                # message does not reject)
                if (name.startswith(REJECTING_PREFIXES) or name in REJECTING_NAMES) and name not in by_name:
                    reason = reason or f"calls {name} (line {sub.lineno})"
                calls.add(name)
        return reason, calls

    reasons: dict[tuple[str, str], str] = {}
    calls: dict[tuple[str, str], set[str]] = {}
    for key, node in functions.items():
        reason, calls[key] = direct(node)
        if reason:
            reasons[key] = reason
    changed = True
    while changed:  # propagate through calls to spec functions that may reject
        changed = False
        for key in functions:
            if key in reasons:
                continue
            for name in calls[key]:
                hit = next((k for k in by_name.get(name, []) if k in reasons and k != key), None)
                if hit is not None:
                    reasons[key] = f"calls {name} (which {reasons[hit]} in {hit[0]})"
                    changed = True
                    break
    result: dict[str, dict[str, str]] = {}
    for (module, name), reason in reasons.items():
        result.setdefault(module, {})[name] = reason
    return result


def test_the_scan_sees_rejecting_functions() -> None:
    found = rejecting_functions()
    assert "require" in found["transition"] and "check_signer" in found["transition"]
    assert "state_transition" in found["transition"]


# No known offenders: `state.require_account`/`require_slot` (renamed from `get_*`) are the ones that may
# raise WitnessError. The set stays so that a deliberate, documented exception has one place to go.
KNOWN_OFFENDERS: set[tuple[str, str]] = set()


def test_compute_and_get_never_reject() -> None:
    offenders = {
        (module, name): reason
        for module, names in rejecting_functions().items()
        for name, reason in names.items()
        if name.startswith(("compute_", "get_"))
    }
    new = [f"optinode/spec/{m}.py: {n} {r}" for (m, n), r in sorted(offenders.items()) if (m, n) not in KNOWN_OFFENDERS]
    assert not new, "\n".join(new)
    fixed = sorted(KNOWN_OFFENDERS - offenders.keys())
    assert not fixed, f"no longer rejecting, remove from KNOWN_OFFENDERS: {fixed}"
