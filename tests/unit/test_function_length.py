"""The house limit on function size, checked over the whole package: no function body over 70 lines
(the style aims at 40). A body is counted as the issue counts it: from the first statement after
the docstring to the last line, so a signature or a docstring that says why never counts against it.

Known exceptions are listed by file and name, and only in code other work owns right now; ``bench/``
has none. A listed function that shrinks below the limit fails the test too, so the list only ever
gets shorter."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ferrymq"
LIMIT_LINES = 70
AIM_LINES = 40  # the style's aim, held in bench/
KNOWN_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset()


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    end = node.end_lineno or body[-1].lineno
    return end - body[0].lineno + 1


def long_functions(root: Path, limit: int = LIMIT_LINES, base: Path = ROOT) -> dict[tuple[str, str], int]:
    """(path relative to ``base``, function name) -> body lines, for every function over ``limit``
    under ``root``."""
    found: dict[tuple[str, str], int] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = body_lines(node)
                if n > limit:
                    found[(path.relative_to(base).as_posix(), node.name)] = n
    return found


def test_no_function_body_is_over_70_lines() -> None:
    found = long_functions(PACKAGE)
    new = {key: n for key, n in found.items() if key not in KNOWN_EXCEPTIONS}
    assert not new, "functions over 70 lines:\n" + "\n".join(
        f"  {path}:{name} ({n} lines)" for (path, name), n in sorted(new.items()))
    assert not KNOWN_EXCEPTIONS - set(found), "fixed: remove from KNOWN_EXCEPTIONS"


def test_bench_has_no_exception_and_keeps_to_the_aim_of_40_lines() -> None:
    assert not [key for key in KNOWN_EXCEPTIONS if key[0].startswith("ferrymq/bench/")]
    found = long_functions(PACKAGE / "bench", limit=AIM_LINES)
    assert not found, "bench functions over 40 lines:\n" + "\n".join(
        f"  {path}:{name} ({n} lines)" for (path, name), n in sorted(found.items()))


def test_the_count_skips_signature_and_docstring_and_catches_a_long_body(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT_LINES + 1))
    short = "\n".join(f"    y{i} = {i}" for i in range(LIMIT_LINES))
    (tmp_path / "m.py").write_text(
        f'def long(\n    a: int,\n) -> None:\n    """Why."""\n{body}\n\n\n'
        f'def short(\n    a: int,\n) -> None:\n    """Why,\n    at length."""\n{short}\n')
    found = long_functions(tmp_path, base=tmp_path)
    assert {name: n for (_, name), n in found.items()} == {"long": LIMIT_LINES + 1}
