"""The tree keeps its shape (issue 17): layers point one way, files and functions stay small."""
import ast
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[1] / "lab"
FILES = sorted(LAB.rglob("*.py"))
# data -> models -> train | eval | infer (and what they build on) -> app -> benchmarks -> CLI
LAYER = {"data": 0, "config": 0, "joints": 0, "names": 0, "errors": 0, "progress": 0, "resources": 0, "colors": 0,
         "models": 1, "people": 2, "train": 2, "eval": 2, "infer": 2, "analysis": 2, "touch": 2, "selfcheck": 2, "quotes": 2,
         "handout": 3, "app": 3, "bench": 4, "commands": 5, "cli": 5, "__main__": 5, "__init__": 0}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYER[parts[1] if len(parts) > 1 else "__init__"]


def imported(tree: ast.AST) -> list[str]:
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out += [a.name for a in n.names if a.name.split(".")[0] == "lab"]
        elif isinstance(n, ast.ImportFrom) and n.module and n.module.split(".")[0] == "lab":
            out += [f"lab.{a.name}" for a in n.names] if n.module == "lab" else [n.module]
    return out


def test_every_module_has_a_layer_and_no_import_runs_back_up():
    up = []
    for path in FILES:
        module = ".".join(path.relative_to(LAB.parent).with_suffix("").parts)
        up += [f"{module} -> {m}" for m in imported(ast.parse(path.read_text())) if layer(m) > layer(module)]
    assert not up, up


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(LAB)))
def test_files_and_functions_fit(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 450
    long = [f"{n.name}: {n.end_lineno - n.lineno + 1} lines" for n in ast.walk(ast.parse(text))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 80]
    assert not long, long
