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

from pipeline.validation.owner import DIVIDED, FICTIVE, edges, owner_findings
from schemas import queries, sql_text

QUERIES = queries("ownership")


def resolve(conn, run_id):
    """Resolve the owners of every current parcel and record, for the import run ``run_id``,
    those of the parcels whose owners changed (``schemas/sql/steps/eigentum_schreiben.sql``:
    the history in ``kataster_privat.eigentum_aufgeloest`` grows with the change, not with the
    city; ``kataster_privat.eigentum_aktuell`` is the current resolution); returns the findings
    recorded with the run.

    The walk meets the problems that the owner rules ``owner.unbooked`` and ``owner.chain``
    name (a parcel without its booking, a cycle, a dead end); they are reported by those rules
    (:mod:`pipeline.validation.owner`), so that an import and a later validation record one finding
    for one problem. The walk follows the edge table of :func:`pipeline.validation.owner.edges`.
    """
    findings = owner_findings(conn, ["owner.unbooked", "owner.chain"])
    resolved(conn)
    conn.execute(sql_text("steps/eigentum_schreiben.sql"), {"run": run_id})
    return findings


def resolved(conn):
    """Resolve the owners of every current parcel into the temporary table
    ``ownership_resolved`` (dropped at commit), the columns of ``eigentum_aufgeloest`` without
    the run; a test compares it with the recorded history's current state."""
    edges(conn)
    conn.execute(QUERIES["index_edges"])
    conn.execute(QUERIES["analyze_edges"])
    conn.execute(QUERIES["sheet_owners"])
    conn.execute(QUERIES["walk"], {"fictive": FICTIVE, "divided": list(DIVIDED)})
    conn.execute(QUERIES["analyze_walk"])
    conn.execute(QUERIES["resolved"])
