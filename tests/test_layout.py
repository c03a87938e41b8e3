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
    assert graph["predictor"] >= {"data", "decoding", "manifest", "program", "backends"}  # the graph is really read
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


# what slu/ may import inside a function: a backend's or tool's library that a deployment may not install, or one
# that must not be imported early (prometheus_client reads $PROMETHEUS_MULTIPROC_DIR on import)
LAZY_IMPORTS = {"paddle.inference", "fastdeploy", "paddlelite.lite", "onnxruntime", "onnxruntime.quantization",
                "onnxruntime.quantization.shape_inference", "onnx", "tokenizers.models",
                "paddlenlp.transformers", "paddle.base.proto", "prometheus_client", "matplotlib", "matplotlib.pyplot",
                "seqeval.metrics"}


def function_imports(path):
    tree = ast.parse(open(os.path.join(ROOT, path), encoding="utf-8").read(), path)
    out = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for n in ast.walk(fn):
                if isinstance(n, ast.Import):
                    out += [(path, n.lineno, a.name) for a in n.names]
                elif isinstance(n, ast.ImportFrom):
                    out.append((path, n.lineno, n.module))
    return out


def test_library_imports_at_the_top_but_optional_libraries():
    found = [x for f in python_files() if f.startswith("slu/") for x in function_imports(f)]
    assert len(found) >= 10  # the walk sees the optional imports that are there
    assert [x for x in found if x[2] not in LAZY_IMPORTS] == []


def test_the_import_check_sees_a_function_level_import(tmp_path, monkeypatch):
    import conftest

    (tmp_path / "m.py").write_text("import os\n\ndef f():\n    import json\n    from slu import data\n")
    monkeypatch.setattr(conftest, "ROOT", str(tmp_path))
    assert function_imports(str(tmp_path / "m.py")) == [(str(tmp_path / "m.py"), 4, "json"),
                                                         (str(tmp_path / "m.py"), 5, "slu")]


def test_the_trainer_is_extended_by_subclass_not_patched():
    """No method of a PaddleNLP object is replaced at run time (compression subclasses JointTrainer)."""
    patched = [f for f in python_files() if f.startswith("slu/")
               if re.search(r"types\.MethodType|\btrainer\.\w+ = ", open(os.path.join(ROOT, f)).read())]
    assert patched == []


def test_calls_with_many_parameters_take_them_by_keyword():
    import inspect

    from slu import export, manifest
    from slu.predictor import Predictor

    for fn, positional in ((Predictor.from_dir, ["model_dir"]), (Predictor, ["runtime", "tokenizer", "labels"]),
                           (manifest.build, []), (export.write_deploy_files, ["directory"])):
        params = inspect.signature(fn).parameters.values()
        assert [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD] == positional, fn
