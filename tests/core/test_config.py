import json
import os

import pytest
from conftest import kataster

from pipeline.config import load_config, settings
from pipeline.errors import ConfigError


def test_defaults_are_declared_once_in_the_schema():
    cfg = load_config(environ={})
    for key, leaf in settings().items():
        assert cfg[key] == leaf.get("default"), key
        assert leaf.get("description"), f"{key} is undocumented"


def test_file_interpolation_and_environment_overrides(tmp_path):
    f = tmp_path / "kataster.yaml"
    f.write_text(
        "database:\n"
        "  url: postgresql://u:${DB_PASS:-fallback}@db.example:5432/kat\n"
        "  lock_timeout: 30\n"
        "history: false\n"
        "paths:\n"
        "  output_dir: ${OUT_DIR:-/srv/out}\n")
    cfg = load_config(f, environ={"DB_PASS": "geheim"})
    assert cfg["database.url"] == "postgresql://u:geheim@db.example:5432/kat"
    assert cfg["database.lock_timeout"] == 30
    assert cfg["history"] is False
    assert cfg["paths.output_dir"] == "/srv/out"
    cfg = load_config(f, environ={"KATASTER_DATABASE_LOCK_TIMEOUT": "5",
                                  "KATASTER_HISTORY": "yes", "KATASTER_IMPORT_BATCH_SIZE": "7"})
    assert cfg["database.lock_timeout"] == 5.0 and cfg["history"] is True
    assert cfg["import.batch_size"] == 7
    assert "geheim" not in json.dumps(cfg.masked())


@pytest.mark.parametrize("text, message", [
    ("databse:\n  url: x\n", "Additional properties"),
    ("database:\n  lock_timeout: -1\n", "lock_timeout"),
    ("import:\n  batch_size: many\n", "batch_size"),
    ("- just\n- a list\n", "mapping"),
])
def test_invalid_files_are_refused(tmp_path, text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(f, environ={})


def test_invalid_environment_value():
    with pytest.raises(ConfigError, match="KATASTER_HISTORY"):
        load_config(environ={"KATASTER_HISTORY": "perhaps"})


def test_config_show_masks_secrets(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KATASTER_")}
    env["KATASTER_DATABASE_URL"] = "postgresql://admin:TopSecret1@db.city.local/kataster"
    out = kataster("config", "show", env=env, cwd=tmp_path, check=True).stdout
    assert "TopSecret1" not in out and "admin:********@db.city.local" in out
    data = json.loads(kataster("config", "show", "--json", env=env, cwd=tmp_path,
                               check=True).stdout)
    assert data["database"]["url"].startswith("postgresql://admin:********@")
    (tmp_path / "kataster.yaml").write_text("history: maybe\n")
    bad = kataster("config", "show", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "history" in bad.stderr
