"""The import rule of docs/architecture.md, checked on the source: every module of t2i/,
benchmarks/, reporting/ and scripts/, and every entry point (bench.py, report.py, train.py,
...) sits in one layer, imports only from its own layer or below, the modules import each
other without a cycle, and no import hides inside a function unless it defers an
optional dependency (and says so)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# bottom to top; a module may import from its own layer and those before it
LAYERS = [
    ("base", ["t2i.errors", "t2i.atomic_files", "t2i.safe_load", "t2i.stops", "t2i.quiet_libraries", "t2i.images",
              "t2i.tensors", "t2i.moved", "t2i.checkpoint_checks"]),
    ("text", ["t2i.text"]),
    ("data", ["t2i.data"]),
    ("nets", ["t2i.nets"]),
    ("generator contract", ["t2i.image_generator", "t2i.generator"]),
    ("evaluation", ["t2i.evaluation"]),
    ("tasks", ["t2i.tasks"]),
    ("callbacks", ["t2i.callbacks"]),
    ("run support", ["t2i.value_checks", "t2i.unknown_keys", "t2i.retired_options",
                     "t2i.checks", "t2i.config_check", "t2i.run_folder", "t2i.loggers", "t2i.precision",
                     "t2i.summary"]),
    ("run", ["t2i.run", "t2i.generate"]),
    ("sharing", ["t2i.model_card", "t2i.pretrained", "t2i.demo", "t2i"]),
    ("tools' parts", ["benchmarks", "reporting"]),  # bench.py's and report.py's modules, outside the package
    ("entry points and scripts", ["train", "evaluate", "generate", "export", "demo", "bench", "report", "scripts"]),
]
PACKAGES = ("t2i", "benchmarks", "reporting", "scripts")
ENTRY_POINTS = ("train", "evaluate", "generate", "export", "demo", "bench", "report")
PROJECT = {*PACKAGES, *ENTRY_POINTS}  # top-level names that are this project's own modules
# imports a function may defer: packages a user may not have installed (the demo's, the
# Hub's, W&B's), and the package's lazy `t2i.load_generator` (keeps `import t2i` light)
OPTIONAL = ("wandb", "gradio", "huggingface_hub", "t2i.pretrained")
# an entry point's own work, imported after argument parsing so `--help` and config errors
# answer without loading torch (the comment at the import says so)
DEFERRED = {("train", "t2i.run")}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for package in PACKAGES if (ROOT / package).is_dir()
             for p in sorted((ROOT / package).rglob("*.py"))}
    found.update({name: ROOT / f"{name}.py" for name in ENTRY_POINTS if (ROOT / f"{name}.py").is_file()})
    return found


def layer_of(module: str) -> int | None:
    """The layer whose longest listed prefix names the module."""
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            # "t2i" itself (the package's __init__) names only itself
            under = module.startswith(prefix + ".") and prefix != "t2i"
            if under and prefix in ENTRY_POINTS:  # a file, not a package
                under = False
            if (module == prefix or under) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def imports(path: Path) -> list[tuple[str, ast.AST, bool]]:
    """(imported module, node, inside a function) for every import in the file."""
    tree, known = ast.parse(path.read_text()), modules()
    found: list[tuple[str, ast.AST, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child, inside) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                # `from t2i import pretrained` imports the module t2i.pretrained
                found.extend((f"{child.module}.{alias.name}" if f"{child.module}.{alias.name}" in known
                              else child.module, child, inside) for alias in child.names)
            visit(child, inside)

    visit(tree, False)
    return found


def t2i_imports(path: Path) -> set[str]:
    """The project's own modules `path` imports (t2i, the tools' packages, entry points)."""
    return {name for name, _, _ in imports(path) if name.split(".")[0] in PROJECT}


def test_every_module_has_a_layer():
    assert [m for m in modules() if layer_of(m) is None] == []


def test_the_tools_and_scripts_are_checked():
    """bench.py, report.py, their packages and scripts/ live by the same rule as t2i/."""
    checked = modules()
    assert {"bench", "report", "train", "benchmarks.dcgan", "benchmarks.steps", "reporting.runs"} <= set(checked)
    assert any(m.startswith("scripts.") for m in checked)
    assert layer_of("benchmarks.dcgan") > layer_of("t2i.pretrained") and layer_of("bench") > layer_of("benchmarks")


def test_no_import_goes_up():
    upward = []
    for module, path in modules().items():
        for target in t2i_imports(path):
            if None not in (layer_of(target), layer_of(module)) and layer_of(target) > layer_of(module):
                upward.append(f"{module} ({LAYERS[layer_of(module)][0]}) -> {target} ({LAYERS[layer_of(target)][0]})")
    assert upward == []


def test_no_import_cycle():
    known = modules()
    graph = {m: {t for t in t2i_imports(p) if t in known and t != m} for m, p in known.items()}
    state: dict[str, int] = {}

    def cycle_from(m: str, stack: list[str]) -> list[str] | None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                return stack + [m, t]
            if t not in state and (found := cycle_from(t, stack + [m])):
                return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            assert cycle_from(m, []) is None


def test_imports_inside_functions_only_defer_optional_dependencies():
    hidden = []
    for module, path in modules().items():
        lines = path.read_text().splitlines()
        for name, node, inside in imports(path):
            if not inside:
                continue
            line = lines[node.lineno - 1]
            optional = name.split(".")[0] in OPTIONAL or name in OPTIONAL
            if (module, name) in DEFERRED and "#" in line:
                continue
            if not optional or "optional" not in line.split("#", 1)[-1] or "#" not in line:
                hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}: {line.strip()}")
    assert hidden == []


def test_tests_defer_an_import_only_with_a_reason():
    """The tests import at the top too; one deferred into a function says why at the import
    (an optional dependency, an import cycle, or the import being what the test checks)."""
    hidden = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        lines = path.read_text().splitlines()
        for _, node, inside in imports(path):
            if inside and "#" not in lines[node.lineno - 1]:
                hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert hidden == []


@pytest.mark.parametrize("rule", ["up", "cycle", "tool", "hidden"])
def test_the_checks_catch_a_violation(rule, tmp_path):
    """The checker itself: a data module importing a task is upward, and so is one importing
    report.py's package; two modules importing each other are a cycle; a benchmark hiding
    an import of the project in a function is hidden."""
    pkg = tmp_path / "t2i"
    (pkg / "data").mkdir(parents=True)
    (pkg / "tasks").mkdir()
    (tmp_path / "reporting").mkdir()
    (tmp_path / "benchmarks").mkdir()
    a = {"up": "from t2i.tasks.b import x\n", "cycle": "import t2i.data.b\n", "tool": "from reporting.b import x\n",
         "hidden": "x = 1\n"}[rule]
    (pkg / "data" / "a.py").write_text(a)
    (pkg / "tasks" / "b.py").write_text("x = 1\n")
    (pkg / "data" / "b.py").write_text("import t2i.data.a\n")
    (tmp_path / "reporting" / "b.py").write_text("x = 1\n")
    (tmp_path / "benchmarks" / "c.py").write_text("def f():\n    from t2i.data.a import x\n    return x\n")
    check = {"up": test_no_import_goes_up, "tool": test_no_import_goes_up, "cycle": test_no_import_cycle,
             "hidden": test_imports_inside_functions_only_defer_optional_dependencies}[rule]
    globals()["ROOT"] = tmp_path
    try:
        with pytest.raises(AssertionError):
            check()
    finally:
        globals()["ROOT"] = Path(__file__).resolve().parents[1]
