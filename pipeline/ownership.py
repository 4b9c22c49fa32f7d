"""Who owns each current parcel: the ownership chain resolved into eigentum_aufgeloest.

Flurstück ─istGebucht→ Buchungsstelle ─istBestandteilVon→ Buchungsblatt ←istBestandteilVon─
Namensnummer ─benennt→ Person. A booking on a fictive sheet (blattart 5000) or a divided
property (buchungsart 1101, 1102, 2201) is owned through the bookings that point at it with
``an`` (e.g. Wohnungseigentum 1301, Miteigentum 1302), recursively, multiplying their shares.
Rights on a parcel (Erbbaurecht 2101, …) pointing at an ordinary booking are listed too, with
their own buchungsart, so they stay distinguishable from ownership. Shares are exact fractions.
Communities: a Namensnummer without ``benennt`` heads the members numbered below it (DIN 1421).

All of it is set-based SQL in the import's transaction (three statements over the current
versions; the server spills to disk rather than growing, whatever the size of the delivery):

1. ``ownership_sheet_owners``: the owners of every sheet with their shares, each member's share
   multiplied by the shares of the community heads above it (a recursive walk up the DIN 1421
   number, one level a step);
2. ``ownership_walk``: from every booking of a current parcel along the ``an`` references that
   point at it (recursive; a step into a booking already on the path marks a cycle and ends);
3. the rows: each booking reached that is owned directly (not divided, not on a fictive sheet)
   times its sheet's owners.

Shares stay exact: a fraction is a pair of ``numeric`` (decimals such as ``7.000000000000``
are exact in it), multiplied pairwise and reduced by their greatest common divisor when written.
Dangling references become findings (of the owner rules), never crashes.
"""

from __future__ import annotations

from contextlib import nullcontext

from psycopg import sql

from pipeline.db import scoped_memory
from pipeline.validation.owner import DIVIDED, FICTIVE, keep_edges, owner_findings
from schemas import queries, sql_text

QUERIES = queries("ownership")


# The tables whose objects decide a parcel's owners (a Person's own data does not: the
# resolution names it by its id).
TABLES = ("kataster.ax_flurstueck", "kataster_privat.ax_buchungsstelle",
          "kataster_privat.ax_buchungsblatt", "kataster_privat.ax_namensnummer")


def resolve(conn, run_id, touched=None):
    """Resolve the owners of the parcels whose owners run ``run_id`` may have changed and
    record those whose owners did change (``schemas/sql/steps/eigentum_schreiben.sql``: the
    history in ``kataster_privat.eigentum_aufgeloest`` grows with the change, not with the
    city; ``kataster_privat.eigentum_aktuell`` is the current resolution); returns the findings
    recorded with the run.

    ``touched`` is ``{table: (stage table or None, [gml_id, ...])}``: the objects of
    :data:`TABLES` the run delivered (in its staging tables) or ended (by its operations). The
    parcels in scope are found from them (:func:`scope`); without it (a run without history,
    or the first resolution of a database) every current parcel is resolved.

    The walk meets the problems that the owner rules ``owner.unbooked`` and ``owner.chain``
    name (a parcel without its booking, a cycle, a dead end); they are reported by those rules
    (:mod:`pipeline.validation.owner`), so that an import and a later validation record one finding
    for one problem. The walk follows the edge table of the ``an`` references, which this
    keeps current first (:func:`pipeline.validation.owner.keep_edges`).
    """
    from pipeline.steps import ids_of

    if touched is not None and conn.execute(QUERIES["first_resolution"]).fetchone()[0]:
        touched = None
    bookings = "kataster_privat.ax_buchungsstelle"
    keep_edges(conn, None if touched is None else
               ids_of(conn, {bookings: touched.get(bookings, (None, ()))}))
    with scoped_memory(conn) if touched is not None else nullcontext():
        findings = owner_findings(conn, ["owner.unbooked", "owner.chain"],
                                  None if touched is None else ids_of(conn, touched))
        resolved(conn, run_id, touched)
        in_scope = sql.SQL(QUERIES["owners_in_scope"] if touched is not None else "")
        conn.execute(sql.SQL(sql_text("steps/eigentum_schreiben.sql")).format(
            in_scope=in_scope), {"run": run_id})
    return findings


def scope(conn, run_id, touched):
    """The temporary tables ``ownership_scope`` (the parcels whose owners the run may have
    changed) and ``ownership_bookings`` (the bookings their walk can reach), from the objects
    the run ``touched`` (see :func:`resolve`)."""
    conn.execute(QUERIES["create_touched"])
    for table, (stage, ids) in touched.items():
        if stage:
            conn.execute(sql.SQL(QUERIES["touched_staged"]).format(stage=sql.Identifier(stage)),
                         {"table": table})
        with conn.cursor() as cur:
            cur.executemany(QUERIES["touched_operation"],
                            [{"table": table, "gml_id": g} for g in ids])
    conn.execute(QUERIES["scope"], {"run": run_id})
    conn.execute(QUERIES["analyze_scope"])
    conn.execute(QUERIES["scope_bookings"])
    conn.execute(QUERIES["analyze_bookings"])


def resolved(conn, run_id=None, touched=None):
    """Resolve the owners into the temporary table ``ownership_resolved`` (dropped at commit),
    the columns of ``eigentum_aufgeloest`` without the run: of every current parcel, or (with
    ``touched``) of the parcels in the scope of run ``run_id`` that ``touched`` gives (see
    :func:`resolve`). A test compares the full resolution with the recorded history's
    current state."""
    scoped = touched is not None
    if scoped:
        scope(conn, run_id, touched)

    def only(fragment):
        return sql.SQL(QUERIES[fragment] if scoped else "")

    conn.execute(sql.SQL(QUERIES["walk"]).format(in_scope=only("parcels_in_scope"),
                                                 bookings=only("bookings_in_scope")),
                 {"fictive": FICTIVE, "divided": list(DIVIDED)})
    conn.execute(QUERIES["analyze_walk"])
    conn.execute(sql.SQL(QUERIES["sheet_owners"]).format(in_scope=only("sheets_in_scope")))
    conn.execute(QUERIES["analyze_sheet_owners"])
    conn.execute(QUERIES["resolved"])
