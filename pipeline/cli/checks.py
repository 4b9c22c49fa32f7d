"""Commands for the findings: ``validate``, ``repair``, ``findings``."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline import api
from pipeline.cli.root import cli, echo_json
from pipeline.errors import UsageError


# -- validate and findings ------------------------------------------------------------------------
@cli.command("validate")
@click.option("--rules", help="Comma-separated rule ids (default: all validation rules).")
@click.option("--gemarkung", help="Only this Gemarkungsnummer (its borders included).")
@click.option("--strict", is_flag=True, help="Exit with code 4 if any open error finding remains.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write an HTML report (one file, German labels).")
@click.option("--findings", "findings_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the findings to a GeoPackage.")
@click.option("--scheduler", help="Dask scheduler: tcp://HOST:PORT, 'processes' (default) or "
                                  "'synchronous'.")
@click.option("--private", is_flag=True,
              help="Include owner-related findings in the outputs (needs the owner-data role).")
@click.pass_obj
def validate_cmd(obj, rules, gemarkung, strict, as_json, report, findings_out, scheduler,
                 private):
    """Check the stored cadastre; store, report and locate the findings."""
    from pipeline.errors import ValidationFailed
    from pipeline.validation.findings import summary_json, visible

    database = obj.database()
    result = api.validate(rules=rules.split(",") if rules else None, gemarkung=gemarkung,
                          scheduler=scheduler, private=private, config=obj.config,
                          database=database)
    shown = visible(result, private)
    if report:
        from exporters.findings import write_report

        write_report(database, result, report, gemarkung, findings=shown)
        obj.say(f"report: {report}")
    if findings_out:
        from exporters.findings import write_gpkg

        layers = write_gpkg(shown, findings_out)
        obj.say(f"findings GeoPackage: {findings_out} ({', '.join(f'{k} {v}' for k, v in layers.items() if v)})")
    if as_json:
        echo_json(summary_json(result))
    else:
        sev = result.counts["by_severity"]
        obj.say(f"validation run {result.run_id} in {result.seconds:.1f} s: {sev['error']} error, "
                f"{sev['warning']} warning, {sev['info']} info; {result.fixed} earlier findings "
                "fixed")
        for rule_id, n in sorted(result.counts["by_rule"].items()):
            obj.say(f"  {rule_id:24} {n}")
    open_errors = [f for f in result.findings if f.severity == "error" and f.status == "open"]
    if strict and open_errors:
        raise ValidationFailed(f"{len(open_errors)} open error findings (--strict)")


@cli.command("repair")
@click.argument("finding_ids", nargs=-1, type=int)
@click.option("--max-area-change", type=float,
              help="Largest relative area change a repair may make "
                   "(default: validation.repair_max_area_change).")
@click.option("--yes", is_flag=True, help="Apply the acceptable repairs (without: only show them).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def repair_cmd(obj, finding_ids, max_area_change, yes, as_json):
    """Propose (and with --yes apply) repairs of invalid parcel geometries."""
    from pipeline.repair import apply, propose

    database = obj.database()
    limit = max_area_change if max_area_change is not None else \
        obj.config["validation.repair_max_area_change"]
    proposals = propose(database, limit, finding_ids)
    run_id = apply(database, proposals, obj.config["database.lock_timeout"]) \
        if yes and any(p.ok for p in proposals) else None
    data = {"run_id": run_id, "applied": bool(run_id), "proposals": [
        {"finding": p.finding_id, "gml_id": p.gml_id, "flurstueckskennzeichen":
         p.flurstueckskennzeichen, "ok": p.ok, "reason": p.reason,
         "area_delivered": round(p.delivered.area, 3), "area_repaired": round(p.repaired.area, 3)}
        for p in proposals]}
    if as_json:
        echo_json(data)
        return
    for p in data["proposals"]:
        mark = "repair " if p["ok"] else "refused"
        click.echo(f"{mark}  finding {p['finding']}  {p['flurstueckskennzeichen']}  {p['reason']}")
    if not proposals:
        obj.say("no open geometry.invalid findings of current parcels")
    elif run_id:
        obj.say(f"applied {sum(p.ok for p in proposals)} repairs in run {run_id}; the delivered "
                "geometries are kept in kataster.repair_log")
    elif any(p.ok for p in proposals):
        obj.say("nothing changed; run again with --yes to apply the repairs marked 'repair'")


@cli.group()
def findings():
    """Work with stored findings: list, accept, reopen."""


@findings.command("list")
@click.option("--rule")
@click.option("--status", type=click.Choice(["open", "accepted", "fixed"]))
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--all", "show_all", is_flag=True, help="All matching findings (no limit).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def findings_list(obj, rule, status, limit, show_all, as_json):
    """List public findings."""
    from pipeline.validation.rules import RULES

    if rule and rule not in RULES:
        import difflib

        close = difflib.get_close_matches(rule, list(RULES), n=3)
        raise UsageError(f"unknown rule {rule!r}"
                         + (f"; did you mean {', '.join(close)}?" if close else "")
                         + f" (rules: {', '.join(sorted(RULES))})")
    from pipeline.validation import findings as stored

    with obj.database("reader").connect() as conn:
        data, total = stored.listing(conn, rule, status, None if show_all else limit)
    if as_json:
        echo_json(data)
        return
    for d in data:
        click.echo(f"{d['id']:>6}  {d['severity']:7}  {d['status']:8}  {d['rule']:20}  "
                   f"{d['object'] or '-':18}  {d['message']}")
    if len(data) < total:
        obj.say(f"showing {len(data)} of {total} findings (--limit N or --all shows more)")


def _set_status(obj, ids, rule, reason, new, old):
    import getpass

    from pipeline.validation import findings as stored

    if not ids and not rule:
        raise click.UsageError("name finding ids or --rule")
    with obj.database().connect() as conn:
        if ids:
            unknown = stored.unknown_ids(conn, ids)
            if unknown:
                raise UsageError(f"no public finding with id {', '.join(map(str, unknown))} "
                                 "('kataster findings list' shows them); nothing was changed")
        n = stored.set_status(conn, new, getpass.getuser(), reason, ids=ids or None,
                              rule_id=rule, old=old)
        conn.commit()
    obj.say(f"{n} findings {STATUS_WORD[new]}")


STATUS_WORD = {"accepted": "accepted", "open": "reopened"}


@findings.command("accept")
@click.argument("ids", nargs=-1, type=int)
@click.option("--rule", help="All open findings of this rule.")
@click.option("--reason", required=True, help="Why this is an accepted exception.")
@click.pass_obj
def findings_accept(obj, ids, rule, reason):
    """Accept findings as known exceptions (they stay accepted on re-runs)."""
    _set_status(obj, ids, rule, reason, "accepted", ["open"])


@findings.command("reopen")
@click.argument("ids", nargs=-1, type=int)
@click.option("--rule")
@click.option("--reason", default="reopened", show_default=True)
@click.pass_obj
def findings_reopen(obj, ids, rule, reason):
    """Reopen accepted or fixed findings."""
    _set_status(obj, ids, rule, reason, "open", ["accepted", "fixed"])
