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


# -- SQL lives in .sql files ------------------------------------------------------------------
SQL_START = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "WITH",
             "ANALYZE", "TRUNCATE", "COPY", "SET", "SHOW", "GRANT", "REVOKE", "REFRESH", "LOCK",
             "VACUUM", "COMMENT")


def sql_in_strings(text):
    """Line numbers of string literals (docstrings aside) that are SQL statements: text that
    starts with an upper-case SQL keyword followed by more words."""
    tree = ast.parse(text)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
             for v in node.values}     # an f-string is checked as a whole
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            value = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings | parts:
            value = node.value
        else:
            continue
        words = value.lstrip(" (").split(None, 2)
        if len(words) >= 2 and words[0] in SQL_START:
            found.append(node.lineno)
    return found


def test_the_sql_checker_sees_a_statement():
    assert sql_in_strings('"""SELECT in a docstring is prose."""\n'
                          'x = "SELECT id FROM t WHERE a = %s"\n'
                          'y = f"UPDATE {t} SET a = 1"\nz = "SET"\n') == [2, 3]


@pytest.mark.parametrize("path", [p for pkg in ("pipeline", "importers", "exporters", "schemas")
                                  for p in modules(pkg)], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_sql_in_python_strings(path):
    """Statements are named in ``schemas/sql/queries/<module>.sql`` (or are whole files under
    ``schemas/sql/``); Python holds none."""
    assert sql_in_strings(path.read_text(encoding="utf-8")) == []


def query_references(text):
    """{file: (names used, every string literal)} of a module: subscripts of a name bound to
    ``queries("file")`` and the first argument of the module's ``_q``."""
    tree = ast.parse(text)
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and getattr(node.value.func, "id", None) == "queries":
            bound.update({t.id: node.value.args[0].value for t in node.targets
                          if isinstance(t, ast.Name)})
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("pipeline."):
            for alias in node.names:                     # QUERIES as X from another module
                if alias.name == "QUERIES" and alias.asname:
                    owner = ROOT / (node.module.replace(".", "/") + ".py")
                    bound[alias.asname] = query_files(owner.read_text(encoding="utf-8"))[0]

    def keys(expr):
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return [expr.value]
        if isinstance(expr, ast.IfExp):
            return keys(expr.body) + keys(expr.orelse)
        return []

    used = {f: set() for f in bound.values()}
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and getattr(node.value, "id", None) in bound:
            used[bound[node.value.id]].update(keys(node.slice))
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Call) \
                and getattr(node.value.func, "id", None) == "queries":     # queries("f")["x"]
            used.setdefault(node.value.args[0].value, set()).update(keys(node.slice))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_q" and node.args \
                and "QUERIES" in bound:
            used[bound["QUERIES"]].update(keys(node.args[0]))
    literals = {n.value for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return {f: (names, literals) for f, names in used.items()}


def query_files(text):
    return [n.args[0].value for n in ast.walk(ast.parse(text))
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "queries"]


def test_every_named_statement_exists_and_is_used():
    """Each ``QUERIES["name"]`` a module uses is in its file, and each statement of a file is
    used by some module that reads the file (by its name, or by a string naming it: a rule id
    ending in ``.name``, a fragment handed to a helper)."""
    from schemas import SQL_DIR, queries

    files = {p.stem: dict(queries(p.stem)) for p in (SQL_DIR / "queries").glob("*.sql")}
    used_anywhere = {f: set() for f in files}
    for path in [p for pkg in ("pipeline", "importers", "exporters", "schemas")
                 for p in modules(pkg)]:
        for file, (names, literals) in query_references(path.read_text("utf-8")).items():
            assert file in files, f"{path}: no schemas/sql/queries/{file}.sql"
            missing = names - set(files[file])
            assert not missing, f"{path}: {sorted(missing)} not in queries/{file}.sql"
            used_anywhere[file] |= names | {k for k in files[file]
                                            if k in literals
                                            or any(lit.endswith("." + k) for lit in literals)}
    unused = {f: sorted(set(s) - used_anywhere[f]) for f, s in files.items()
              if set(s) - used_anywhere[f]}
    assert unused == {}
