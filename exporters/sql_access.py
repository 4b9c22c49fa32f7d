"""SQL access for departments: group roles, grants, and the audited owner look-up."""

from __future__ import annotations

import psycopg
from psycopg import errors, sql

from pipeline import kennzeichen
from pipeline.errors import KatasterError, UsageError
from schemas import queries, sql_text

QUERIES = queries("sql_access")

ROLES = {"leser": "kataster_leser", "eigentum": "kataster_eigentum", "admin": "kataster_admin"}


def create_roles(db):
    """Create or update the group roles and their grants (idempotent)."""
    with db.connect() as conn:
        try:
            conn.execute(sql_text("roles.sql"))
        except errors.InsufficientPrivilege as err:
            raise KatasterError(f"not allowed: {err.diag.message_primary} (creating the group "
                                "roles needs a database role with CREATEROLE, and granting on "
                                "the tables their owner)") from None
        conn.commit()
    return list(ROLES.values())


def grant(db, login_role, role):
    """Make ``login_role`` a member of the group role ``kataster_<role>``."""
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    with db.connect() as conn:
        if not conn.execute(QUERIES["role_exists"], {"role": login_role}).fetchone():
            raise UsageError(f"there is no database role {login_role!r} (create it first, e.g. "
                             f"CREATE ROLE {login_role} LOGIN PASSWORD '…')")
        if not conn.execute(QUERIES["role_exists"], {"role": ROLES[role]}).fetchone():
            raise UsageError("the group roles do not exist yet: run 'kataster sql roles'")
        conn.execute(sql.SQL(QUERIES["grant"]).format(group=sql.Identifier(ROLES[role]),
                                                      login=sql.Identifier(login_role)))
        conn.commit()


def owner_lookup(db, flurstueckskennzeichen, aktenzeichen, bearbeiter=None):
    """Owners of one parcel through the audited function (rows as dicts).

    A malformed key is refused here, before the function writes an audit record. The audit
    record names the database session user (authoritative) and, as claimed, the operating-system
    user and ``bearbeiter``."""
    import getpass

    try:
        flurstueckskennzeichen = kennzeichen.parse(flurstueckskennzeichen).text
    except ValueError as err:
        raise UsageError(str(err)) from None
    with db.connect() as conn:
        conn.execute(QUERIES["claim"], {"os_user": getpass.getuser(),
                                        "bearbeiter": bearbeiter or ""})
        try:
            cur = conn.execute(QUERIES["owner_lookup"], {
                "flurstueckskennzeichen": flurstueckskennzeichen, "aktenzeichen": aktenzeichen})
        except errors.InvalidParameterValue as err:
            raise UsageError(err.diag.message_primary) from None
        except errors.InsufficientPrivilege as err:
            raise KatasterError(f"not allowed: {err.diag.message_primary} (the owner-data role "
                                "kataster_eigentum is needed)") from None
        except psycopg.Error as err:           # the audit refused it (limit) or is unreachable
            raise KatasterError(f"owner look-up refused: {err.diag.message_primary}") from None
        cols = [d.name for d in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        conn.commit()
    return rows


def audit_verify(db):
    """Every sign that the owner look-up audit was changed: [(record id, message)]."""
    with db.connect() as conn:
        return conn.execute(sql_text("audit_verify.sql")).fetchall()


def audit_limit(db, parcels_per_hour):
    """Set the parcels one Aktenzeichen may look up per hour (None: no limit)."""
    with db.connect() as conn:
        conn.execute(QUERIES["audit_limit"], {"parcels_per_hour": parcels_per_hour})
        conn.commit()


# Buchungsart (AX_Buchungsstelle) as the Grundbuch names it, for people reading owner lists.
BUCHUNGSART = {
    1100: "Grundstück", 1101: "Aufgeteiltes Grundstück WEG",
    1102: "Aufgeteiltes Grundstück § 3 Abs. 4 GBO", 1200: "Ungetrennter Hofraum",
    1301: "Wohnungs-/Teileigentum", 1302: "Miteigentum § 3 Abs. 4 GBO",
    1303: "Anteil am ungetrennten Hofraum", 2101: "Erbbaurecht", 2102: "Untererbbaurecht",
    2103: "Gebäudeeigentum", 2104: "Fischereirecht", 2105: "Bergwerksrecht",
    2106: "Nutzungsrecht", 2107: "Realgewerberecht", 2108: "Gemeinderecht",
    2109: "Stavenrecht", 2110: "Hauberge", 2201: "Aufgeteiltes Erbbaurecht WEG",
    2202: "Aufgeteiltes Untererbbaurecht WEG", 2301: "Wohnungs-/Teilerbbaurecht",
    2302: "Wohnungs-/Teiluntererbbaurecht", 5101: "Von Buchungspflicht befreit",
}


def owner_rows_for_people(rows):
    """Owner rows as people read them: Buchungsart decoded, the share as a reduced fraction."""
    from decimal import Decimal
    from fractions import Fraction

    out = []
    for r in rows:
        share = None
        if r.get("anteil_zaehler") is not None and r.get("anteil_nenner"):
            f = Fraction(Decimal(str(r["anteil_zaehler"]))) / Fraction(Decimal(str(r["anteil_nenner"])))
            share = f"{f.numerator}/{f.denominator}"
        art = r.get("buchungsart")
        out.append({**r, "anteil_zaehler": None if share is None else int(share.split("/")[0]),
                    "anteil_nenner": None if share is None else int(share.split("/")[1]),
                    "anteil": share,
                    "buchungsart_text": BUCHUNGSART.get(art, f"Buchungsart {art}") if art else None})
    return out
