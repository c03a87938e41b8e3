"""The structure the code is held to: library modules (slu/) never import an entry script, the library has no
import cycle (function-level imports included), nothing edits sys.path, and there is one predictor class and one
table of backend refusals."""
import ast
import os
import re

from conftest import ROOT

ENTRY_SCRIPTS = {"run_train", "run_eval", "compress", "infer_demo", "server", "convert_to_onnx", "setup",
                 "split_data", "init_offline_model", "average_checkpoints", "run", "train_throughput"}


def python_files():
    skip = {".venv", ".git", "third_party", "build"}
    for d, dirs, files in os.walk(ROOT):
        dirs[:] = [x for x in dirs if x not in skip and not x.startswith(("build", "."))]
        for f in files:
            if f.endswith(".py"):
                yield os.path.relpath(os.path.join(d, f), ROOT)


def imported_modules(path):
    """Every module an import statement in the file names, at any depth (lazy imports inside functions too)."""
    tree = ast.parse(open(os.path.join(ROOT, path), encoding="utf-8").read(), path)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def library_graph():
    modules = {f[len("slu/"):-3] for f in python_files() if f.startswith("slu/") and f != "slu/__init__.py"}
    graph = {}
    for m in modules:
        names = imported_modules(f"slu/{m}.py")
        graph[m] = {n.split(".")[1] for n in names if n.startswith("slu.") and n.split(".")[1] in modules} - {m}
    return graph


def test_library_never_imports_an_entry_script():
    for m in library_graph():
        bad = {n for n in imported_modules(f"slu/{m}.py") if n.split(".")[0] in ENTRY_SCRIPTS | {"utils", "model"}}
        assert not bad, f"slu/{m}.py imports {bad}"


def find_cycle(graph):
    """One import cycle of the graph as a list of modules, or None."""
    def visit(m, path):
        if m in path:
            return path[path.index(m):] + [m]
        return next((c for c in (visit(n, path + [m]) for n in sorted(graph[m])) if c), None)

    return next((c for c in (visit(m, []) for m in sorted(graph)) if c), None)


def test_library_has_no_import_cycle():
    graph = library_graph()
    assert graph["predictor"] >= {"core", "manifest", "program", "backends"}  # the graph is really read
    assert find_cycle(graph) is None


def test_the_cycle_check_sees_a_cycle():
    """find_cycle on graphs with and without a planted cycle (so the check above cannot pass by construction)."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_sys_path_edits():
    offenders = [f for f in python_files() if re.search(r"sys\.path\.(insert|append)",
                                                        open(os.path.join(ROOT, f), encoding="utf-8").read())]
    assert offenders == []


def test_one_predictor_class_and_one_refusal_table():
    predictors, refusal_texts = [], []
    for f in python_files():
        text = open(os.path.join(ROOT, f), encoding="utf-8").read()
        tree = ast.parse(text, f)
        predictors += [f"{f}:{n.name}" for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and "Predictor" in n.name]
        if not f.startswith("tests/") and re.search(r"has no x86 kernel for|returns NaN or crashes", text):
            refusal_texts.append(f)
    assert predictors == ["slu/predictor.py:Predictor"]
    assert refusal_texts == ["slu/backends.py"]
