"""The shape of the package: short modules that say what they hold, no import cycles, a map."""

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "minissl").rglob("*.py"))
MAX_LINES = 520  # a module longer than this is split along its seams


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in FILES}


def test_every_module_is_short_and_starts_by_saying_what_it_holds():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them along their seams): {long}"
    bare = [m for m, p in MODULES.items() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not bare, f"modules without a docstring: {bare}"


def imports_at_load(path: Path) -> set[str]:
    """The minissl modules that loading ``path`` imports (its code outside functions)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found, todo = set(), list(ast.parse(path.read_text()).body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue  # runs later, when called
        todo.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                         for a in node.names)
    return {m for m in found if m in MODULES and m != name}


def test_no_import_cycle_between_modules():
    graph = {m: imports_at_load(p) for m, p in MODULES.items()}
    state, path = {}, []  # state: 1 while on the current path, 2 when done

    def visit(m):
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert graph["minissl.cli.parser"] >= {"minissl.cli.commands", "minissl.cli.args"}


@pytest.mark.parametrize("module, names", [
    ("minissl.evaluate", "FineTuneResult LinearClassifier ProbeResult classification_metrics "
                         "epochs_for_steps evaluate_encoder extract_features few_label_indices "
                         "fine_tune knn_accuracy knn_predict label_efficiency linear_probe "
                         "ridge_r2"),
    ("minissl.widgets", "AUGMENTATION_SLIDERS ENV_VAR Explorer augmentation_explorer "
                        "build_augmentation latent_explorer slider_explorer"),
    ("minissl.cli", "RUN_FILE main"),
])
def test_modules_split_into_packages_keep_their_public_names(module, names):
    public = {n for n in dir(importlib.import_module(module)) if not n.startswith("_")}
    assert set(names.split()) <= public, set(names.split()) - public


def test_the_contributors_map_names_every_module():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    layout = text.split("## Layout", 1)[1].split("```")[1]
    unnamed = [m for m, p in MODULES.items()
               if (p.parent.name + "/" if p.name == "__init__.py" else p.name) not in layout]
    assert not unnamed, f"modules missing from the layout in CONTRIBUTING.md: {unnamed}"
