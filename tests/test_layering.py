"""The package layers: no import circle between modules, and the core loop knows none of its wings.

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
CORE = ("train", "steps", "hooks", "checkpoint", "optim", "sharding", "throughput", "monitor", "memory", "masking",
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


def imports(name: str, path: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports anywhere in its file (and their parent packages)."""
    is_pkg = path.endswith("__init__.py")
    package = name if is_pkg else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            targets.add(mod)
            targets |= {f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in known}
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


def test_no_import_circles(graph):
    assert len(graph) > 60 and "trainer.train" in graph and "mc4_sampling.builder" in graph
    assert cycles(graph) == []


def test_core_imports_no_wing(graph):
    for name in CORE:
        mod = f"trainer.{name}"
        assert mod in graph, mod
        bad = sorted(t for t in graph[mod] if re.match(r"trainer\.(research|finetune)(\.|$)", t))
        assert not bad, f"{mod} imports {bad}"


def test_data_imports_no_model_research_or_finetune(graph):
    data = [m for m in graph if m.startswith("trainer.data")]
    assert len(data) >= 6
    for mod in data:
        bad = sorted(t for t in graph[mod] if re.match(r"trainer\.(models|research|finetune)(\.|$)", t))
        assert not bad, f"{mod} imports {bad}"


def test_only_the_entry_and_commands_compose_the_research_wing(graph):
    users = sorted(m for m, deps in graph.items()
                   if not m.startswith(("trainer.research", "trainer.finetune"))
                   and any(d.startswith("trainer.research") for d in deps))
    assert users == ["trainer.cli", "trainer.config_loading", "trainer.entry"]


# ---------------------------------------------------------------------------------------------
# model families and task kinds: their names are tested in their registry folder only

#: registry folder -> the member names tested nowhere else (a family is a module of trainer/models/, a
#: task kind one of trainer/finetune/kinds/)
FAMILY_AND_KIND_REGISTRIES = {"trainer/models/": ("roberta", "modernbert"),
                              "trainer/finetune/kinds/": ("token", "sequence")}
#: (file, name) pairs that use a member's name as an unrelated word: transformers' fill-mask output keys
FAMILY_AND_KIND_UNRELATED = {("trainer/fill_mask.py", "token"), ("trainer/fill_mask.py", "sequence")}


def family_and_kind_tests(source: str, names) -> list[tuple[int, str]]:
    """``(line, name)`` where ``source`` tests one of ``names``: compares it (``==``, ``!=``, ``in``,
    ``not in``, also as an element of a literal tuple, list or set on the right of ``in``) or uses it as
    the key of a dict literal."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, right in zip(node.ops, node.comparators):
                if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.Tuple, ast.List, ast.Set)):
                    operands += right.elts
            found += [(node.lineno, o.value) for o in operands if isinstance(o, ast.Constant) and o.value in names]
        elif isinstance(node, ast.Dict):
            found += [(k.lineno, k.value) for k in node.keys if isinstance(k, ast.Constant) and k.value in names]
    return found


def test_family_and_kind_scan_sees_comparisons_memberships_and_keys():
    src = ("a = x == 'roberta'\nb = 'token' in kinds\nc = k in ('x', 'sequence')\nd = {'modernbert': 1}\n"
           "e = get('roberta')\nf = name != other\n")
    assert family_and_kind_tests(src, ("roberta", "modernbert", "token", "sequence")) == [
        (1, "roberta"), (2, "token"), (3, "sequence"), (4, "modernbert")]


def test_no_family_or_kind_name_is_tested_outside_its_registry():
    """``== "roberta"``, ``kind in ("token", ...)``, ``{"sequence": ...}``: only inside the member's registry
    folder; everywhere else the registry is asked (``get_family``, ``get_kind``, a member's attributes)."""
    found = []
    for folder, dirs, files in os.walk(os.path.join(ROOT, "trainer")):
        dirs.sort()
        for f in sorted(files):
            if not f.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(folder, f), ROOT).replace(os.sep, "/")
            names = {n for reg, members in FAMILY_AND_KIND_REGISTRIES.items() if not rel.startswith(reg)
                     for n in members}
            with open(os.path.join(folder, f), encoding="utf-8") as fh:
                hits = family_and_kind_tests(fh.read(), names)
            found += [f"{rel}:{line} {name!r}" for line, name in hits if (rel, name) not in FAMILY_AND_KIND_UNRELATED]
    assert found == []
