"""The tree follows the data flow: fast, database-free checks of who may import whom, and of
the core's named import steps."""

import ast
from pathlib import Path

import pytest

from pipeline import steps
from pipeline.errors import PluginError

ROOT = Path(__file__).resolve().parents[2]

# What an importer may use of the core: errors, the key grammar, coordinate sanity, the rule
# registry, the finding, the database-free geometry checks and the process helpers. Never the
# loader, the run, the steps, ownership, the rest of validation, the database or an exporter.
IMPORTER_MAY_USE = {"pipeline.errors", "pipeline.kennzeichen", "pipeline.coordinates",
                    "pipeline.validation.rules", "pipeline.validation.findings",
                    "pipeline.validation.checks", "pipeline.parallel"}
# What exporters must never use: the code that writes (loading, runs, steps, repairs, the
# ownership resolution, the validation run, the synthetic data).
EXPORTER_MUST_NOT = {"pipeline.loader", "pipeline.runs", "pipeline.steps", "pipeline.repair",
                     "pipeline.ownership", "pipeline.validation.run", "pipeline.synthetic"}


def imports(text):
    """Every module a Python source imports (``from a import b`` gives ``a`` and ``a.b``)."""
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules(package):
    """The package's Python modules, its subpackages' included (not the map page's npm
    packages)."""
    return sorted(p for p in (ROOT / package).rglob("*.py") if "node_modules" not in p.parts)


def within(name, allowed):
    """True if ``name`` is one of the ``allowed`` modules or a name inside one of them."""
    return any(name == m or name.startswith(m + ".") for m in allowed)


def violations_of_importers(text):
    out = set()
    for name in imports(text):
        top = name.split(".")[0]
        if top in ("psycopg", "sqlalchemy", "exporters"):
            out.add(name)
        elif top == "pipeline" and name != "pipeline" and not within(name, IMPORTER_MAY_USE) \
                and not any(m.startswith(name + ".") for m in IMPORTER_MAY_USE):
            out.add(name)    # (a package above an allowed module, such as pipeline.validation,
                             # is allowed: its __init__ imports nothing)
    return out


def test_the_checker_sees_a_forbidden_import():
    assert violations_of_importers("from pipeline.loader import Loader\n") == {
        "pipeline.loader", "pipeline.loader.Loader"}
    assert violations_of_importers("def f():\n    import psycopg\n") == {"psycopg"}
    assert violations_of_importers("from pipeline import ownership\n") == {
        "pipeline.ownership"}
    assert violations_of_importers("from pipeline.validation import run\n") == {
        "pipeline.validation.run"}
    assert not violations_of_importers("from pipeline.errors import SourceError\n")
    assert not violations_of_importers("from pipeline.validation import checks\n")


@pytest.mark.parametrize("package", ["validation", "synthetic"])
def test_these_packages_import_nothing_themselves(package):
    """Importers use the registry, the finding and the checks: loading them must not load the
    validation; the generator's parts load on their own (their __init__ holds a docstring)."""
    tree = ast.parse((ROOT / "pipeline" / package / "__init__.py").read_text())
    assert [type(n).__name__ for n in tree.body] == ["Expr"]


@pytest.mark.parametrize("path", modules("importers"), ids=lambda p: p.name)
def test_importers_only_read(path):
    """No importer touches a database or the core's loading, run, step, ownership or
    validation code (also not inside a function)."""
    assert violations_of_importers(path.read_text(encoding="utf-8")) == set()


@pytest.mark.parametrize("path", modules("exporters"), ids=lambda p: p.name)
def test_exporters_never_use_the_writing_core(path):
    used = imports(path.read_text(encoding="utf-8"))
    assert {n for n in used if within(n, EXPORTER_MUST_NOT)} == set()


def test_nothing_imports_the_command_line():
    cli = ROOT / "pipeline" / "cli"
    users = [p.relative_to(ROOT) for pkg in ("pipeline", "importers", "exporters", "schemas")
             for p in modules(pkg) if cli not in p.parents
             and within_any(imports(p.read_text(encoding="utf-8")), {"pipeline.cli"})]
    assert users == []


def within_any(names, allowed):
    return any(within(n, allowed) for n in names)


def test_steps_run_in_declared_order_with_their_dependencies():
    ran = []
    saved = dict(steps.STEPS)
    try:
        steps.STEPS.clear()
        steps.step("first", "merged")(lambda ctx: ran.append("first") or [])
        steps.step("second", "merged", after=("first",))(lambda ctx: ran.append("second") or [])
        steps.step("early", "staged")(lambda ctx: ran.append("early") or [])
        steps.run(("second", "first", "early"), "merged", None)
        assert ran == ["first", "second"]
        with pytest.raises(PluginError, match="second needs first"):
            steps.run(("second",), "merged", None)
        with pytest.raises(PluginError, match="unknown import step"):
            steps.check(("nonesuch",))
    finally:
        steps.STEPS.clear()
        steps.STEPS.update(saved)


def test_the_importers_name_known_steps():
    named = {}
    for path in modules("importers"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "steps":
                named[path.name] = ast.literal_eval(node.value)
    assert named == {"nas.py": ("check_operations", "apply_operations", "lage_text",
                                "ownership"),
                     "ogr.py": ("duplicate_keys",), "scan.py": ("karte_cog",)}
    for names in named.values():
        steps.check(names)


def test_step_sql_comments_hold_no_placeholders():
    """The step SQL files are composed with psycopg's sql.SQL.format: a {placeholder} in a
    comment would be replaced too (and a multi-line part would end the comment)."""
    files = sorted((ROOT / "schemas" / "sql" / "steps").glob("*.sql")) + \
        sorted((ROOT / "schemas" / "sql" / "rules").glob("*.sql"))
    assert len(files) >= 10
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("--"):
                assert "{" not in line and "%(" not in line, f"{path.name}:{n}"


def layout_block():
    """DESIGN.md's layout block: each room (a path ending in /) and its description."""
    text = (ROOT / "DESIGN.md").read_text(encoding="utf-8")
    block = text.split("## Layout and packaging\n\n```\n", 1)[1].split("```", 1)[0]
    rooms = {}
    for line in block.splitlines():
        if line and not line.startswith(" "):
            room, _, words = line.partition(" ")
            rooms[room] = words
        else:
            rooms[room] += " " + line.strip()
    return rooms


def unnamed(rooms, modules_of):
    """Per package, its modules that the package's room does not name (a package without a
    room: all of them)."""
    import re

    out = {}
    for package, stems in modules_of.items():
        words = set(re.findall(r"[a-z_]+", rooms.get(package, "")))
        missing = sorted(s for s in stems if s not in words)
        if missing:
            out[package] = missing
    return out


def test_the_layout_in_design_is_the_tree():
    """Every room of the layout block exists; every Python package of the tree is a room, and
    its description names each of its modules."""
    rooms = layout_block()
    assert {r for r in rooms if not (ROOT / r).is_dir()} == set()
    packages = sorted(p.parent for top in ("pipeline", "importers", "exporters", "schemas")
                      for p in (ROOT / top).rglob("__init__.py")
                      if "node_modules" not in p.parts and "migrations" not in p.parts)
    modules_of = {p.relative_to(ROOT).as_posix() + "/":
                  [m.stem for m in p.glob("*.py") if m.stem != "__init__"] for p in packages}
    assert len(modules_of) >= 7
    assert [p for p in modules_of if p not in rooms] == []
    assert unnamed(rooms, modules_of) == {}


def test_the_layout_checker_sees_a_missing_module():
    rooms = {"pipeline/": "the core: runs (the run), loader"}
    assert unnamed(rooms, {"pipeline/": ["runs", "loader", "steps"]}) == {"pipeline/": ["steps"]}
    assert unnamed(rooms, {"pipeline/x/": ["a"]}) == {"pipeline/x/": ["a"]}
    assert unnamed(rooms, {"pipeline/": ["runs"]}) == {}
