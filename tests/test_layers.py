"""The package's layering: foundations import no method, and methods import no other method."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hands"
FOUNDATIONS = ("mano", "geometry", "render", "io", "eval", "data", "utils", "prediction")
METHODS = ("acr", "attentionhand", "ohta", "fit")


def imported_packages(path: Path) -> set[str]:
    """The `hands.<name>` packages a module imports (at any depth of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
        names |= {m.split(".")[1] for m in modules if m.startswith("hands.") and m.count(".") >= 1}
    return names


def test_foundations_import_no_method():
    offenders = {str(p.relative_to(PACKAGE)): sorted(imported_packages(p) & set(METHODS))
                 for layer in FOUNDATIONS for p in (PACKAGE / layer).rglob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}


def test_methods_import_no_other_method():
    offenders = {str(p.relative_to(PACKAGE)): sorted(imported_packages(p) & (set(METHODS) - {method}))
                 for method in METHODS for p in (PACKAGE / method).rglob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_scan_sees_imports():
    assert imported_packages(PACKAGE / "cli" / "text_to_avatar.py") >= {"attentionhand", "ohta"}
