"""The tree follows the data flow: fast, database-free checks of who may import whom, and of
the core's named import steps."""

import ast
from pathlib import Path

import pytest

from pipeline import steps
from pipeline.errors import PluginError

ROOT = Path(__file__).resolve().parents[1]

# What an importer may use of the core: errors, the key grammar, coordinate sanity, the rule
# registry's Finding, the database-free geometry checks and the process helpers. Never the
# loader, the run, the steps, ownership, validation, the database or an exporter.
IMPORTER_MAY_USE = {"pipeline.errors", "pipeline.kennzeichen", "pipeline.coordinates",
                    "pipeline.rules", "pipeline.checks", "pipeline.parallel"}
# What exporters must never use: the code that writes (loading, runs, steps, repairs, the
# ownership resolution).
EXPORTER_MUST_NOT = {"pipeline.loader", "pipeline.runs", "pipeline.steps", "pipeline.repair",
                     "pipeline.ownership", "pipeline.generator", "pipeline.generator_nas"}


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
    return sorted((ROOT / package).glob("*.py"))


def violations_of_importers(text):
    out = set()
    for name in imports(text):
        top = name.split(".")[0]
        if top in ("psycopg", "sqlalchemy", "exporters"):
            out.add(name)
        elif top == "pipeline" and name != "pipeline":
            module = ".".join(name.split(".")[:2])
            if module not in IMPORTER_MAY_USE and not _is_name_from(name):
                out.add(name)
    return out


def _is_name_from(name):
    """``from pipeline.errors import SourceError`` also yields ``pipeline.errors.SourceError``,
    which is a name, not a module: judged by its module."""
    return len(name.split(".")) > 2 and ".".join(name.split(".")[:2]) in IMPORTER_MAY_USE


def test_the_checker_sees_a_forbidden_import():
    assert violations_of_importers("from pipeline.loader import Loader\n") == {
        "pipeline.loader", "pipeline.loader.Loader"}
    assert violations_of_importers("def f():\n    import psycopg\n") == {"psycopg"}
    assert violations_of_importers("from pipeline import ownership\n") == {
        "pipeline.ownership"}
    assert not violations_of_importers("from pipeline.errors import SourceError\n")


@pytest.mark.parametrize("path", modules("importers"), ids=lambda p: p.name)
def test_importers_only_read(path):
    """No importer touches a database or the core's loading, run, step, ownership or
    validation code (also not inside a function)."""
    assert violations_of_importers(path.read_text(encoding="utf-8")) == set()


@pytest.mark.parametrize("path", modules("exporters"), ids=lambda p: p.name)
def test_exporters_never_use_the_writing_core(path):
    used = {".".join(n.split(".")[:2]) for n in imports(path.read_text(encoding="utf-8"))}
    assert used & EXPORTER_MUST_NOT == set()


def test_nothing_imports_the_command_line():
    users = [p.relative_to(ROOT) for pkg in ("pipeline", "importers", "exporters", "schemas")
             for p in modules(pkg) if p.name != "cli.py"
             and {"pipeline.cli", "pipeline.cli.cli"} & imports(p.read_text(encoding="utf-8"))]
    assert users == []


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
    files = sorted((ROOT / "schemas" / "sql" / "steps").glob("*.sql"))
    assert len(files) >= 5
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("--"):
                assert "{" not in line and "%(" not in line, f"{path.name}:{n}"
