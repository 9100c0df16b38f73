"""The package layers: the sampler never imports the trainer, the common layer imports neither package's
upper modules, no import circle between modules, and the core loop knows none of its wings.

Every import of every module of ``trainer/`` and ``mc4_sampling/`` is read with ``ast``: top-level,
function-local and ``TYPE_CHECKING`` ones alike (a circle closed by a late import is still a circle).
Importing ``a.b.c`` also runs ``a/__init__.py`` and ``a/b/__init__.py``; those edges count too,
except towards the importer's own packages (already being imported when it runs: a package's
``__init__`` may re-export its modules).
"""

from __future__ import annotations

import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("trainer", "mc4_sampling")

#: The trainer's core: the loop and what it is built from. None of them imports a wing of optional features.
CORE = ("train", "run_setup", "initial_state", "evaluation", "compilation", "loop", "preemption",
        "steps", "hooks", "checkpoint", "optim", "sharding", "throughput", "monitor", "memory", "masking",
        "flops", "config", "console", "errors", "export", "fill_mask", "param_paths", "cards")


def modules() -> dict[str, str]:
    """``{dotted module name: file}`` of every module of the packages (``pkg.sub`` for ``pkg/sub/__init__.py``)."""
    out = {}
    for pkg in PACKAGES:
        for folder, dirs, files in os.walk(os.path.join(ROOT, pkg)):
            dirs[:] = sorted(d for d in dirs if os.path.isfile(os.path.join(folder, d, "__init__.py")))
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].split(os.sep)
                    name = ".".join(rel[:-1] if rel[-1] == "__init__" else rel)
                    out[name] = os.path.join(folder, f)
    return out


def imported_names(name: str, path: str, calls: bool = True) -> set[str]:
    """Every module name module ``name`` imports anywhere in its file, absolute (relative ones resolved; for
    ``from m import x`` both ``m`` and ``m.x``), and with ``calls`` the constant names given to
    ``importlib.import_module`` / ``__import__``."""
    is_pkg = path.endswith("__init__.py")
    package = name if is_pkg else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                mod = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
        elif calls and isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("import_module", "__import__"):
                out.add(node.args[0].value)
    return out


def imports(name: str, path: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports anywhere in its file (and their parent packages)."""
    targets = imported_names(name, path, calls=False)
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    out = set()
    for t in targets:
        parts = t.split(".")
        for i in range(1, len(parts)):  # the packages above the module, run first
            if ".".join(parts[:i]) in known and ".".join(parts[:i]) not in own:
                out.add(".".join(parts[:i]))
        if t in known and t not in own:  # the module itself (a package imported by name: its __init__);
            out.add(t)  # `from . import sibling` names the own package, initialised before this module anyway
    out.discard(name)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(name, path, known) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_parser_sees_local_and_type_checking_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import X\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    from .sub import c\n")
    (pkg / "sub" / "c.py").write_text("from ..a import Y\n")
    known = {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c"}
    g = {m: imports(m, str(tmp_path / (m.replace(".", "/") + ("/__init__.py" if m in ("pkg", "pkg.sub") else ".py"))),
                    known) for m in known}
    assert g["pkg.a"] == {"pkg.b"}
    assert g["pkg.b"] == {"pkg.a", "pkg.sub", "pkg.sub.c"}  # `from . import a`: its own package is no edge
    assert g["pkg.sub.c"] == {"pkg.a"}
    assert cycles(g) == [["pkg.a", "pkg.b", "pkg.sub.c"]]  # a -> b (TYPE_CHECKING) -> c (local) -> a
    del g["pkg.sub.c"]
    assert cycles(g) == [["pkg.a", "pkg.b"]]


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_parser_sees_every_import_of_another_package(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import importlib\ndef f():\n    from trainer.data import x\n"
                    "    importlib.import_module('trainer.y')\nfrom .. import errors\n")
    got = imported_names("mc4_sampling.common.m", str(path))
    assert {"trainer.data", "trainer.data.x", "trainer.y", "mc4_sampling", "mc4_sampling.errors"} <= got


def test_the_sampler_never_imports_the_trainer():
    """``mc4_sampling`` stands on its own: no import of ``trainer`` anywhere (function-local ones included);
    what the trainer adds to the sampler's commands comes through entry points (``publish --tokenizer``)."""
    bad = {name: sorted(t for t in imported_names(name, path) if _in(t, "trainer"))
           for name, path in modules().items() if _in(name, "mc4_sampling")}
    assert len(bad) > 30
    assert {name: targets for name, targets in bad.items() if targets} == {}


def test_the_common_layer_imports_nothing_above_it():
    """``mc4_sampling.common`` is below both packages: it imports no other module of ``mc4_sampling``, nor
    ``trainer``."""
    common = {name: path for name, path in modules().items() if _in(name, "mc4_sampling.common")}
    assert len(common) >= 8
    bad = {name: sorted(t for t in imported_names(name, path)
                        if _in(t, "trainer") or (_in(t, "mc4_sampling") and not _in(t, "mc4_sampling.common")))
           for name, path in common.items()}
    assert {name: targets for name, targets in bad.items() if targets} == {}


def test_no_import_circles(graph):
    assert len(graph) > 60 and "trainer.train" in graph and "mc4_sampling.builder" in graph
    assert cycles(graph) == []


def test_core_imports_no_wing(graph):
    for name in CORE:
        mod = f"trainer.{name}"
        assert mod in graph, mod
        bad = sorted(t for t in graph[mod] if re.match(r"trainer\.(research|finetune|artificial)(\.|$)", t))
        assert not bad, f"{mod} imports {bad}"


def test_data_imports_no_model_research_or_finetune(graph):
    data = [m for m in graph if m.startswith("trainer.data")]
    assert len(data) >= 6
    for mod in data:
        bad = sorted(t for t in graph[mod] if re.match(r"trainer\.(models|research|finetune|artificial)(\.|$)", t))
        assert not bad, f"{mod} imports {bad}"


def test_only_the_entry_and_commands_compose_the_research_wing(graph):
    users = sorted(m for m, deps in graph.items()
                   if not m.startswith(("trainer.research", "trainer.finetune"))
                   and any(d.startswith("trainer.research") for d in deps))
    assert users == ["trainer.cli", "trainer.config_loading", "trainer.entry"]


# --- registry names: tested only inside their registry ---------------------------------------------------------

#: expressions compared with a word that is also a weighting's name but hold something else (a remat policy, a path)
NOT_WEIGHTINGS = frozenset({"remat", "args.output.lower()"})


def name_tests(names, allowed_prefixes, *, unrelated=frozenset(), root: str = ROOT, packages=PACKAGES) -> list[str]:
    """Where a string literal of ``names`` is tested in the modules of ``packages`` outside ``allowed_prefixes``
    (paths relative to ``root``, e.g. ``mc4_sampling/weightings/``), as ``"path:line: code"``.

    A test is a comparison (``==``, ``!=``, ``is``, ``in``: ``"x" == m``, ``m in ("x", "y")``, ``"x" in d``), a dict
    key (``{"x": ...}``), a subscript (``table["x"]``) or a ``case "x":`` pattern. Naming a member elsewhere (a
    default, an argument, a message) is not a test. A comparison whose other side is one of ``unrelated`` (its
    source, e.g. ``remat``) compares a value that only shares the word. Configs, docs and tests are not scanned.
    """
    names = set(names)
    out = []

    def named(node) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names

    def members(node) -> list:
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return list(node.elts)
        if isinstance(node, ast.Dict):
            return [k for k in node.keys if k is not None]
        return []

    for pkg in packages:
        for folder, dirs, files in os.walk(os.path.join(root, pkg)):
            dirs.sort()
            for f in sorted(files):
                if not f.endswith(".py"):
                    continue
                path = os.path.join(folder, f)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                if rel.startswith(tuple(allowed_prefixes)):
                    continue
                for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
                    hit = False
                    if isinstance(node, ast.Compare):
                        operands = [node.left, *node.comparators]
                        for i, op in enumerate(node.ops):
                            left, right = operands[i], operands[i + 1]
                            candidates = [(left, right), (right, left)]
                            if isinstance(op, (ast.In, ast.NotIn)):
                                candidates += [(m, left) for m in members(right)]
                            hit |= any(named(a) and ast.unparse(b) not in unrelated for a, b in candidates)
                    elif isinstance(node, ast.Dict):
                        hit = any(named(k) for k in node.keys if k is not None)
                    elif isinstance(node, ast.Subscript):
                        hit = named(node.slice)
                    elif isinstance(node, ast.MatchValue):
                        hit = named(node.value)
                    if hit:
                        out.append((rel, node.lineno, node.col_offset, ast.unparse(node)))
    return [f"{rel}:{line}: {code}" for rel, line, _, code in sorted(out)]


def test_name_tests_finds_comparisons_keys_and_membership(tmp_path):
    (tmp_path / "pkg" / "own").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text(
        'def f(m, remat, d):\n'
        '    if m == "gauss" or "bell" != m or m in ("x", "gauss") or "gauss" in d:\n'
        '        return {"gauss": 1}["gauss"]\n'
        '    match m:\n'
        '        case "bell":\n'
        '            pass\n'
        '    g(method="gauss", default="bell")\n'  # an argument is no test
        '    x = "gauss"\n'
        '    return remat == "bell"\n')  # unrelated
    (tmp_path / "pkg" / "own" / "b.py").write_text('def f(m):\n    return m == "gauss"\n')
    hits = name_tests({"gauss", "bell"}, ("pkg/own/",), unrelated={"remat"}, root=str(tmp_path), packages=("pkg",))
    # line 2: four comparisons; 3: a dict key and a subscript; 5: a case pattern; b.py is allowed
    assert [h.split(":")[:2] for h in hits] == [["pkg/a.py", n] for n in ("2", "2", "2", "2", "3", "3", "5")]


def test_weighting_names_are_tested_only_in_their_registry():
    from mc4_sampling.weightings import WEIGHTINGS

    hits = name_tests(set(WEIGHTINGS), ("mc4_sampling/weightings/",), unrelated=NOT_WEIGHTINGS)
    assert not hits, ("a weighting's name is tested outside mc4_sampling/weightings/; ask its registry member "
                      "(WEIGHTINGS[name].<attribute>) instead:\n" + "\n".join(hits))


def test_no_family_or_kind_name_is_tested_outside_its_registry():
    """``== "roberta"``, ``kind in ("token", ...)``, ``{"sequence": ...}``: only inside the member's registry
    folder; everywhere else the registry is asked (``get_family``, ``get_kind``, a member's attributes)."""
    import trainer.finetune.kinds as kinds
    import trainer.models  # noqa: F401  (registers the families)
    from trainer.models.base import _FAMILIES

    assert {"roberta", "modernbert"} <= set(_FAMILIES) and {"token", "sequence"} <= set(kinds.KINDS)
    # trainer/fill_mask.py (and probe_bias.py, which reads it): "token" and "sequence" are keys of transformers'
    # fill-mask output, not task kinds
    hits = (name_tests(set(_FAMILIES), ("trainer/models/",), packages=("trainer",))
            + name_tests(set(kinds.KINDS), ("trainer/finetune/kinds/", "trainer/fill_mask.py",
                                            "trainer/finetune/probe_bias.py"), packages=("trainer",)))
    assert not hits, ("a model family's or task kind's name is tested outside its registry folder; ask the "
                      "registry (get_family, get_kind, a member's attributes) instead:\n" + "\n".join(hits))
