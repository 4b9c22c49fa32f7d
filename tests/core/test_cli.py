"""The command line: exit codes, JSON outputs against their schemas, registries documented."""

import json
import re

import jsonschema
from conftest import ROOT, kataster

from pipeline import registry
from pipeline.runs import IMPORT_LOCK
from schemas import json_schema


def test_exit_codes_and_json(cli_env, sample_gpkg, tmp_path, db):
    ok = kataster("import", sample_gpkg, "--json", env=cli_env)
    assert ok.returncode == 0
    jsonschema.validate(json.loads(ok.stdout), json_schema("import-summary"))
    again = kataster("import", sample_gpkg, "--json", env=cli_env)
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "skipped"
    failed = kataster("import", tmp_path / "missing.gpkg", "--json", env=cli_env)
    assert failed.returncode == 1
    data = json.loads(failed.stdout)
    jsonschema.validate(data, json_schema("import-summary"))
    assert data["status"] == "failed" and "missing.gpkg" in data["error"]
    assert kataster("import", env=cli_env).returncode == 2                  # no paths
    assert kataster("import", sample_gpkg, "--bogus", env=cli_env).returncode == 2
    assert kataster("import", sample_gpkg, "--format", "nope", env=cli_env).returncode == 2
    assert kataster("export", "xls", "--layer", "flurstueck", "--out", "x", env=cli_env
                    ).returncode == 2

    import psycopg
    with psycopg.connect(db.url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (IMPORT_LOCK,))
        locked = kataster("import", sample_gpkg, "--force", "--json",
                          env=dict(cli_env, KATASTER_DATABASE_LOCK_TIMEOUT="0.5"))
    assert locked.returncode == 3 and json.loads(locked.stdout)["status"] == "failed"

    runs = kataster("runs", "--json", env=cli_env, check=True)
    data = json.loads(runs.stdout)
    jsonschema.validate(data, json_schema("runs"))
    assert [r["status"] for r in data] == ["skipped", "committed"]
    text = kataster("runs", env=cli_env, check=True).stdout
    assert "committed" in text and "1200 AX_Flurstueck" in text

    versions = json.loads(kataster("versions", "--json", env=cli_env, check=True).stdout)
    jsonschema.validate(versions, json_schema("versions"))
    assert versions["PostGIS"].startswith("3.") and versions["PostgreSQL"].startswith("15.")
    assert re.match(r"\d+\.\d+", versions["GEOS (shapely)"])

    gen = kataster("generate", "--parcels", "50", "--out", tmp_path / "g.gpkg", "--json",
                   env=cli_env, check=True)
    jsonschema.validate(json.loads(gen.stdout), json_schema("generate-summary"))


def test_passwords_never_in_messages(tmp_path):
    env = {"PATH": "/usr/bin:/bin",
           "KATASTER_DATABASE_URL": "postgresql://u:Very$ecret@127.0.0.1:1/x",
           "KATASTER_PATHS_STATE_DIR": str(tmp_path)}
    for args in (["runs"], ["import", str(tmp_path / "x.gpkg")], ["db", "status"],
                 ["versions"], ["db", "up"]):
        proc = kataster(*args, env=env)
        assert "Very$ecret" not in proc.stdout + proc.stderr, args


def test_every_plugin_and_schema_is_documented():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    design = (ROOT / "DESIGN.md").read_text(encoding="utf-8")
    for kind in ("importer", "exporter"):
        for name in registry.names(kind):
            assert f"`{name}`" in readme, f"{kind} {name} is not documented in README.md"
    for schema in (ROOT / "schemas").glob("*.schema.json"):
        assert schema.name in design, f"{schema.name} is not mentioned in DESIGN.md"
    for code in range(5):
        assert f"| {code} |" in readme, f"exit code {code} missing from the README table"


def test_mistakes_are_errors_not_silent_no_ops(cli_env, db, sample_gpkg):
    """findings list stopped at 100 without saying so; accepting an unknown id said "0 findings
    accepted"; an unknown rule listed nothing; --limit -1 and --encoding junk gave tracebacks."""
    kataster("import", sample_gpkg, env=cli_env, check=True)
    with db.connect() as conn:
        conn.execute("INSERT INTO kataster.finding (key, rule, severity, object_id, message)"
                     " SELECT 'k' || g, 'geometry.sliver', 'warning', 'x' || g, 'm'"
                     " FROM generate_series(1, 7) g")
        conn.commit()
    proc = kataster("findings", "list", "--limit", "3", env=cli_env)
    assert proc.returncode == 0 and "showing 3 of 7 findings" in proc.stderr + proc.stdout
    assert len(kataster("findings", "list", "--all", env=cli_env).stdout.splitlines()) == 7
    for args, text in [(["findings", "list", "--limit", "-1"], "-1"),
                       (["findings", "list", "--rule", "coverage.gapp"], "did you mean coverage.gap"),
                       (["findings", "accept", "99999", "--reason", "x"], "no public finding with id 99999"),
                       (["import", sample_gpkg, "--encoding", "junk"], "not a known text encoding"),
                       (["runs", "--limit", "0"], "0")]:
        proc = kataster(*args, env=cli_env)
        assert proc.returncode == 2, (args, proc.stderr)
        assert text in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_mistyped_settings_and_srs_are_reported(cli_env, db, sample_gpkg):
    env = dict(cli_env, KATASTER_SERVE_PROT="8081")
    proc = kataster("config", "show", env=env)
    assert proc.returncode == 0
    assert "KATASTER_SERVE_PROT is not a Kataster setting" in proc.stderr
    assert "did you mean KATASTER_SERVE_PORT" in proc.stderr
    bad = kataster("import", sample_gpkg, "--srs", "EPSG:99999", env=cli_env)
    assert bad.returncode == 2 and "EPSG:99999" in bad.stderr and "Traceback" not in bad.stderr


def test_unknown_districts_are_errors_and_names_work(cli_env, db, sample_gpkg, tmp_path):
    """validate --gemarkung 99999 and export --gemarkung Broich ran on nothing with exit 0."""
    kataster("import", sample_gpkg, env=cli_env, check=True)
    for args in (["validate", "--gemarkung", "99999"],
                 ["export", "csv", "--layer", "flurstueck", "--out", tmp_path / "a.csv",
                  "--gemarkung", "Brioch"],
                 ["export", "csv", "--layer", "flurstueck", "--out", tmp_path / "b.csv",
                  "--gemarkung", "3096", "--flur", "999"]):
        proc = kataster(*args, env=cli_env)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert "no Gemarkung" in proc.stderr or "has no Flur" in proc.stderr, proc.stderr
    by_name = kataster("export", "csv", "--layer", "flurstueck", "--out", tmp_path / "c.csv",
                       "--gemarkung", "broich", env=cli_env)
    by_number = kataster("export", "csv", "--layer", "flurstueck", "--out", tmp_path / "d.csv",
                         "--gemarkung", "3096", env=cli_env)
    assert by_name.returncode == 0 and by_number.returncode == 0, by_name.stderr
    assert (tmp_path / "c.csv").read_text() == (tmp_path / "d.csv").read_text()
    assert len((tmp_path / "c.csv").read_text().splitlines()) > 10
