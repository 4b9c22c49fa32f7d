"""SQL access for departments: group roles, grants, and the audited owner look-up."""

from __future__ import annotations

from psycopg import errors, sql

from pipeline import kennzeichen
from pipeline.errors import KatasterError, UsageError
from schemas import sql_text

ROLES = {"leser": "kataster_leser", "eigentum": "kataster_eigentum", "admin": "kataster_admin"}


def create_roles(db):
    """Create or update the group roles and their grants (idempotent)."""
    with db.connect() as conn:
        conn.execute(sql_text("roles.sql"))
        conn.commit()
    return list(ROLES.values())


def grant(db, login_role, role):
    """Make ``login_role`` a member of the group role ``kataster_<role>``."""
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    with db.connect() as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login_role,)).fetchone():
            raise UsageError(f"there is no database role {login_role!r} (create it first, e.g. "
                             f"CREATE ROLE {login_role} LOGIN PASSWORD '…')")
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLES[role],)).fetchone():
            raise UsageError("the group roles do not exist yet: run 'kataster sql roles'")
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(ROLES[role]),
                                                      sql.Identifier(login_role)))
        conn.commit()


def owner_lookup(db, flurstueckskennzeichen, aktenzeichen):
    """Owners of one parcel through the audited function (rows as dicts).

    A malformed key is refused here, before the function writes an audit record."""
    try:
        flurstueckskennzeichen = kennzeichen.parse(flurstueckskennzeichen).text
    except ValueError as err:
        raise UsageError(str(err)) from None
    with db.connect() as conn:
        try:
            cur = conn.execute("SELECT * FROM kataster_privat.eigentum_auskunft(%s, %s)",
                               (flurstueckskennzeichen, aktenzeichen))
        except errors.InvalidParameterValue as err:
            raise UsageError(err.diag.message_primary) from None
        except errors.InsufficientPrivilege as err:
            raise KatasterError(f"not allowed: {err.diag.message_primary} (the owner-data role "
                                "kataster_eigentum is needed)") from None
        cols = [d.name for d in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        conn.commit()
    return rows
