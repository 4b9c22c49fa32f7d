"""The one rule registry: every rule dispatchable, implemented and documented (no database)."""

import re
from pathlib import Path

import pytest

from pipeline.validation.rules import RULES, SEVERITIES, of_kind, rule
from pipeline.validation.stages import PARTITION_STAGES

ROOT = Path(__file__).resolve().parents[2]


def design_table():
    """The rule table of DESIGN.md's Validation section: id → (severity, parameters cell)."""
    rows = {}
    for line in (ROOT / "DESIGN.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if re.fullmatch(r"`[a-z_]+\.[a-z_]+`", cells[0]):      # a rule id, not a column
            rows[cells[0].strip("`")] = (cells[1], cells[-1])
    return rows


def test_every_rule_is_implemented_where_the_registry_says():
    stages = {s.name for s in PARTITION_STAGES}
    for r in RULES.values():
        assert r.severity in SEVERITIES, r.id
        assert r.kind in ("stage", "sql", "owner", "import"), r.id
        if r.kind == "stage":
            assert r.source in stages, r.id
        elif r.kind == "sql":
            assert (ROOT / "schemas" / "sql" / "rules" / r.source).is_file(), r.id
        else:
            assert r.source is None, r.id
        assert r.private == (r.kind == "owner"), r.id


def test_every_rule_parameter_is_a_setting():
    import json

    schema = json.loads((ROOT / "schemas" / "config.schema.json").read_text())
    settings = set(schema["properties"]["validation"]["properties"])
    assert {p for r in RULES.values() for p in r.params} <= settings


def test_the_design_table_documents_every_stage_and_sql_rule():
    """The table lists exactly the stage and SQL rules, with their severity and parameters;
    owner and import rules are described in the text."""
    table = design_table()
    assert sorted(table) == sorted(of_kind("stage", "sql"))
    for rule_id, (severity, cell) in table.items():
        assert severity == RULES[rule_id].severity, rule_id
        assert sorted(re.findall(r"`([a-z_]+)`", cell)) == sorted(RULES[rule_id].params), rule_id
    text = (ROOT / "DESIGN.md").read_text(encoding="utf-8")
    assert [r for r in of_kind("owner", "import") if f"`{r}`" not in text] == []


def test_every_rule_is_documented_in_german_for_its_readers():
    """Reports and the map page show the German title and explanation; they name no
    configuration key."""
    for r in RULES.values():
        assert r.titel and len(r.erklaerung) > 20, r.id
        assert not re.search(r"\b[a-z_]+\.[a-z_]+\b", r.titel + r.erklaerung), r.id


def test_an_unknown_rule_lists_the_known_ones():
    from pipeline.errors import PluginError

    with pytest.raises(PluginError, match="known rules: area.deviation"):
        rule("no.such")
