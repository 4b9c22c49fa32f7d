"""SQLAlchemy 2 / GeoAlchemy2 models of the Kataster tables.

The SQL files in ``schemas/sql`` (run by the Alembic migrations) create the tables; these
models describe the same tables for Python code that wants the ORM or SQLAlchemy Core
(e.g. ``select(Flurstueck).where(...)``). ``tests/model/test_models.py`` compares them with a migrated
database, so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, Numeric, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TS = TIMESTAMP(timezone=True)


class Base(DeclarativeBase):
    pass


def _geom(kind):
    return mapped_column(Geometry(kind, srid=25832, spatial_index=False), nullable=True)


class ImportRun(Base):
    __tablename__ = "import_run"
    __table_args__ = {"schema": "kataster"}
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    started: Mapped[datetime] = mapped_column(TS)
    finished: Mapped[datetime | None] = mapped_column(TS)
    os_user: Mapped[str] = mapped_column(Text)
    db_user: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    importer: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(Text)
    counts: Mapped[dict] = mapped_column(JSONB)
    findings: Mapped[dict] = mapped_column(JSONB)
    transformation: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    server_pid: Mapped[int | None] = mapped_column(Integer)


class ImportFile(Base):
    __tablename__ = "import_file"
    __table_args__ = {"schema": "kataster"}
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("kataster.import_run.id"),
                                        primary_key=True)
    path: Mapped[str] = mapped_column(Text, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)


class NbaPortion(Base):
    """An applied part of an NBA delivery (see pipeline/portions.py)."""

    __tablename__ = "nba_portion"
    __table_args__ = {"schema": "kataster"}
    profilkennung: Mapped[str] = mapped_column(Text, primary_key=True)
    datum: Mapped[datetime] = mapped_column(TS, primary_key=True)
    laufende_nummer: Mapped[int] = mapped_column(Integer, primary_key=True)
    gesamtzahl: Mapped[int | None] = mapped_column(Integer)
    datei: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("kataster.import_run.id"))


class GemarkungKatalog(Base):
    __tablename__ = "gemarkung_katalog"
    __table_args__ = {"schema": "kataster"}
    land: Mapped[str] = mapped_column(Text, primary_key=True)
    gemarkungsnummer: Mapped[str] = mapped_column(Text, primary_key=True)
    bezeichnung: Mapped[str] = mapped_column(Text)
    katasteramt: Mapped[str] = mapped_column(Text)
    fluren: Mapped[list] = mapped_column(ARRAY(Integer))


class _Object:
    """Identity, history and provenance that every ALKIS object table has."""

    gml_id: Mapped[str] = mapped_column(Text, primary_key=True)
    beginnt: Mapped[datetime] = mapped_column(TS, primary_key=True)
    endet: Mapped[datetime | None] = mapped_column(TS)
    attrs: Mapped[dict] = mapped_column(JSONB)
    content_hash: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int] = mapped_column(BigInteger)
    closed_run_id: Mapped[int | None] = mapped_column(BigInteger)


class Flurstueck(_Object, Base):
    __tablename__ = "ax_flurstueck"
    __table_args__ = {"schema": "kataster"}
    flurstueckskennzeichen: Mapped[str] = mapped_column(Text)
    land: Mapped[str | None] = mapped_column(Text)
    gemarkungsnummer: Mapped[str | None] = mapped_column(Text)
    flurnummer: Mapped[int | None] = mapped_column(Integer)
    zaehler: Mapped[int | None] = mapped_column(Integer)
    nenner: Mapped[str | None] = mapped_column(Text)
    amtliche_flaeche: Mapped[float | None] = mapped_column(Float)
    lage: Mapped[str | None] = mapped_column(Text)
    gemarkung_name: Mapped[str | None] = mapped_column(Text)
    gemeinde_name: Mapped[str | None] = mapped_column(Text)
    gemeindekennzeichen: Mapped[str | None] = mapped_column(Text)
    ist_gebucht: Mapped[list | None] = mapped_column(ARRAY(Text))
    weist_auf: Mapped[list | None] = mapped_column(ARRAY(Text))
    zeigt_auf: Mapped[list | None] = mapped_column(ARRAY(Text))
    geom = _geom("MULTIPOLYGON")


class Gebaeude(_Object, Base):
    __tablename__ = "ax_gebaeude"
    __table_args__ = {"schema": "kataster"}
    gebaeudefunktion: Mapped[int | None] = mapped_column(Integer)
    bezeichnung: Mapped[str | None] = mapped_column(Text)
    lage: Mapped[str | None] = mapped_column(Text)
    land: Mapped[str | None] = mapped_column(Text)
    gemarkungsnummer: Mapped[str | None] = mapped_column(Text)
    geom = _geom("MULTIPOLYGON")


class Karte(_Object, Base):
    """A scanned map sheet georeferenced into a Cloud-Optimized GeoTIFF (``pfad``)."""

    __tablename__ = "karte"
    __table_args__ = {"schema": "kataster"}
    titel: Mapped[str | None] = mapped_column(Text)
    kartenart: Mapped[str | None] = mapped_column(Text)
    massstab: Mapped[int | None] = mapped_column(Integer)
    jahr: Mapped[int | None] = mapped_column(Integer)
    gemarkung_kennzeichen: Mapped[str | None] = mapped_column(Text)
    flurnummer: Mapped[int | None] = mapped_column(Integer)
    quelle: Mapped[str | None] = mapped_column(Text)
    datei: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(Text)
    gcp_datei: Mapped[str | None] = mapped_column(Text)
    transformation: Mapped[str] = mapped_column(Text)
    gcp_anzahl: Mapped[int | None] = mapped_column(Integer)
    rms_m: Mapped[float | None] = mapped_column(Float)
    residuen: Mapped[list | None] = mapped_column(JSONB)
    pfad: Mapped[str] = mapped_column(Text)
    breite: Mapped[int | None] = mapped_column(Integer)
    hoehe: Mapped[int | None] = mapped_column(Integer)
    aufloesung_m: Mapped[float | None] = mapped_column(Float)
    geom = _geom("MULTIPOLYGON")


class FlurKarte(Base):
    """The Flur map (0020): kataster.flur's rows, kept by the runs for the Fluren they touch.
    ``id`` is unique (parcels without a complete Flurkennzeichen share one row without an id);
    the model takes it as the key."""

    __tablename__ = "flur_karte"
    __table_args__ = {"schema": "kataster"}
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    land: Mapped[str | None] = mapped_column(Text)
    gemarkungsnummer: Mapped[str | None] = mapped_column(Text)
    flurnummer: Mapped[int | None] = mapped_column(Integer)
    gemarkung: Mapped[str | None] = mapped_column(Text)
    herkunft: Mapped[str | None] = mapped_column(Text)
    geom = _geom("MULTIPOLYGON")


class GemarkungKarte(Base):
    """The Gemarkung map (0027): kataster.gemarkung's rows, kept by the runs for the
    Gemarkungen of the Fluren they touch. ``id`` is unique (parcels without a Gemarkung share
    one row without an id); the model takes it as the key."""

    __tablename__ = "gemarkung_karte"
    __table_args__ = {"schema": "kataster"}
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    land: Mapped[str | None] = mapped_column(Text)
    gemarkungsnummer: Mapped[str | None] = mapped_column(Text)
    gemarkung: Mapped[str | None] = mapped_column(Text)
    herkunft: Mapped[str | None] = mapped_column(Text)
    geom = _geom("MULTIPOLYGON")


class FlurStueck(Base):
    """A piece of the Flur map (0024): the union of a Flur's current parcels in one grid cell
    (kataster.flur_stueck_quelle's rows, kept by the runs for the cells they touch). The model
    takes Flur and cell as its key (not declared in the table: parcels without a complete
    Flurkennzeichen form pieces without an id)."""

    __tablename__ = "flur_stueck"
    __table_args__ = {"schema": "kataster"}
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    zelle: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    land: Mapped[str | None] = mapped_column(Text)
    gemarkungsnummer: Mapped[str | None] = mapped_column(Text)
    flurnummer: Mapped[int | None] = mapped_column(Integer)
    geom = _geom("MULTIPOLYGON")


class BuchungAn(Base):
    """An ``an`` reference between bookings (0026): booking ``src`` points at booking ``dst``;
    kataster_privat.buchung_an_quelle's rows, kept by the runs for the bookings they touch. The
    model takes the pair as its key (not declared in the table)."""

    __tablename__ = "buchung_an"
    __table_args__ = {"schema": "kataster_privat"}
    src: Mapped[str] = mapped_column(Text, primary_key=True)
    dst: Mapped[str] = mapped_column(Text, primary_key=True)


class Hausnummer(Base):
    """The house numbers (0022): kataster.hausnummer_quelle's rows, kept by the runs for the
    presentation objects and buildings their delivery can have changed."""

    __tablename__ = "hausnummer"
    __table_args__ = {"schema": "kataster"}
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    hausnummer: Mapped[str | None] = mapped_column(Text)
    herkunft: Mapped[str | None] = mapped_column(Text)
    geom = _geom("POINT")


class Strassenname(Base):
    """The street names (0021): kataster.strassenname_quelle's rows, one per street and Flur,
    kept by the runs for the Fluren they touch."""

    __tablename__ = "strassenname"
    __table_args__ = {"schema": "kataster"}
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    strasse: Mapped[str | None] = mapped_column(Text)
    land: Mapped[str | None] = mapped_column(Text)
    gemarkungsnummer: Mapped[str | None] = mapped_column(Text)
    flurnummer: Mapped[int | None] = mapped_column(Integer)
    adressen: Mapped[int | None] = mapped_column(Integer)
    herkunft: Mapped[str | None] = mapped_column(Text)
    geom = _geom("POINT")


class Lagebezeichnung(_Object, Base):
    __tablename__ = "ax_lagebezeichnung"
    __table_args__ = {"schema": "kataster"}
    objektart: Mapped[str] = mapped_column(Text)
    land: Mapped[str | None] = mapped_column(Text)
    regierungsbezirk: Mapped[str | None] = mapped_column(Text)
    kreis: Mapped[str | None] = mapped_column(Text)
    gemeinde: Mapped[str | None] = mapped_column(Text)
    lage: Mapped[str | None] = mapped_column(Text)
    hausnummer: Mapped[str | None] = mapped_column(Text)
    unverschluesselt: Mapped[str | None] = mapped_column(Text)


class Katalog(_Object, Base):
    __tablename__ = "ax_katalog"
    __table_args__ = {"schema": "kataster"}
    objektart: Mapped[str] = mapped_column(Text)
    schluessel: Mapped[str] = mapped_column(Text)
    bezeichnung: Mapped[str | None] = mapped_column(Text)


class Bezirk(_Object, Base):
    __tablename__ = "bezirk"
    __table_args__ = {"schema": "kataster"}
    art: Mapped[str] = mapped_column(Text)
    land: Mapped[str] = mapped_column(Text)
    gemarkungsnummer: Mapped[str] = mapped_column(Text)
    flurnummer: Mapped[int | None] = mapped_column(Integer)
    bezeichnung: Mapped[str | None] = mapped_column(Text)
    geom = _geom("MULTIPOLYGON")


class Nutzung(_Object, Base):
    __tablename__ = "ax_nutzung"
    __table_args__ = {"schema": "kataster"}
    objektart: Mapped[str] = mapped_column(Text)
    geom = _geom("MULTIPOLYGON")


class Objekt(_Object, Base):
    __tablename__ = "ax_objekt"
    __table_args__ = {"schema": "kataster"}
    objektart: Mapped[str] = mapped_column(Text)
    geom = _geom("GEOMETRY")


class PrivatObjekt(_Object, Base):
    __tablename__ = "ax_objekt"
    __table_args__ = {"schema": "kataster_privat"}
    objektart: Mapped[str] = mapped_column(Text)
    geom = _geom("GEOMETRY")


class _Finding:
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    rule: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    object_id: Mapped[str | None] = mapped_column(Text)
    related: Mapped[list] = mapped_column(ARRAY(Text))
    message: Mapped[str] = mapped_column(Text)
    geom = _geom("GEOMETRY")
    first_run_id: Mapped[int | None] = mapped_column(BigInteger)
    run_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text)
    status_by: Mapped[str | None] = mapped_column(Text)
    status_at: Mapped[datetime | None] = mapped_column(TS)
    status_reason: Mapped[str | None] = mapped_column(Text)


class Finding(_Finding, Base):
    __tablename__ = "finding"
    __table_args__ = {"schema": "kataster"}


class PrivatFinding(_Finding, Base):
    __tablename__ = "finding"
    __table_args__ = {"schema": "kataster_privat"}


class Buchungsblatt(_Object, Base):
    __tablename__ = "ax_buchungsblatt"
    __table_args__ = {"schema": "kataster_privat"}
    buchungsblattkennzeichen: Mapped[str | None] = mapped_column(Text)
    land: Mapped[str | None] = mapped_column(Text)
    bezirk: Mapped[str | None] = mapped_column(Text)
    buchungsblattnummer: Mapped[str | None] = mapped_column(Text)
    blattart: Mapped[int | None] = mapped_column(Integer)


class Buchungsstelle(_Object, Base):
    __tablename__ = "ax_buchungsstelle"
    __table_args__ = {"schema": "kataster_privat"}
    buchungsart: Mapped[int | None] = mapped_column(Integer)
    laufende_nummer: Mapped[str | None] = mapped_column(Text)
    anteil_zaehler: Mapped[float | None] = mapped_column(Numeric)
    anteil_nenner: Mapped[float | None] = mapped_column(Numeric)
    ist_bestandteil_von: Mapped[str | None] = mapped_column(Text)
    an: Mapped[list | None] = mapped_column(ARRAY(Text))


class Namensnummer(_Object, Base):
    __tablename__ = "ax_namensnummer"
    __table_args__ = {"schema": "kataster_privat"}
    laufende_nummer_din1421: Mapped[str | None] = mapped_column(Text)
    anteil_zaehler: Mapped[float | None] = mapped_column(Numeric)
    anteil_nenner: Mapped[float | None] = mapped_column(Numeric)
    art_der_rechtsgemeinschaft: Mapped[int | None] = mapped_column(Integer)
    eigentuemerart: Mapped[int | None] = mapped_column(Integer)
    ist_bestandteil_von: Mapped[str | None] = mapped_column(Text)
    benennt: Mapped[str | None] = mapped_column(Text)


class Person(_Object, Base):
    __tablename__ = "ax_person"
    __table_args__ = {"schema": "kataster_privat"}
    nachname_oder_firma: Mapped[str | None] = mapped_column(Text)
    vorname: Mapped[str | None] = mapped_column(Text)
    geburtsname: Mapped[str | None] = mapped_column(Text)
    geburtsdatum: Mapped[date | None] = mapped_column()
    anrede: Mapped[int | None] = mapped_column(Integer)
    akademischer_grad: Mapped[str | None] = mapped_column(Text)
    hat: Mapped[list | None] = mapped_column(ARRAY(Text))


class Anschrift(_Object, Base):
    __tablename__ = "ax_anschrift"
    __table_args__ = {"schema": "kataster_privat"}
    strasse: Mapped[str | None] = mapped_column(Text)
    hausnummer: Mapped[str | None] = mapped_column(Text)
    postleitzahl: Mapped[str | None] = mapped_column(Text)
    ort: Mapped[str | None] = mapped_column(Text)
    bestimmungsland: Mapped[str | None] = mapped_column(Text)


class EigentumAufgeloest(Base):
    __tablename__ = "eigentum_aufgeloest"
    __table_args__ = {"schema": "kataster_privat"}
    # The table has no primary key; the ORM needs one to map it.
    flurstueck_gml_id: Mapped[str] = mapped_column(Text, primary_key=True)
    flurstueckskennzeichen: Mapped[str] = mapped_column(Text)
    buchungsblatt: Mapped[str | None] = mapped_column(Text)
    buchungsart: Mapped[int | None] = mapped_column(Integer)
    person_gml_id: Mapped[str | None] = mapped_column(Text, primary_key=True)
    anteil_zaehler: Mapped[float | None] = mapped_column(Numeric)
    anteil_nenner: Mapped[float | None] = mapped_column(Numeric)
    rechtsgemeinschaft: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # The run found this parcel without owners (it ended, or lost its booking); see 0017.
    entfallen: Mapped[bool] = mapped_column(Boolean, server_default="false")


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = {"schema": "kataster_privat"}
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(TS)
    db_user: Mapped[str] = mapped_column(Text)
    flurstueckskennzeichen: Mapped[str] = mapped_column(Text)
    aktenzeichen: Mapped[str] = mapped_column(Text)
    os_user: Mapped[str | None] = mapped_column(Text)
    bearbeiter: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str | None] = mapped_column(Text)
    hash: Mapped[str | None] = mapped_column(Text)


class AuditGrenze(Base):
    __tablename__ = "audit_grenze"
    __table_args__ = {"schema": "kataster_privat"}
    einzeln: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    flurstuecke_pro_stunde: Mapped[int | None] = mapped_column(Integer)


class RepairLog(Base):
    __tablename__ = "repair_log"
    __table_args__ = {"schema": "kataster"}
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    gml_id: Mapped[str] = mapped_column(Text)
    beginnt: Mapped[datetime] = mapped_column(TS)
    finding_id: Mapped[int | None] = mapped_column(BigInteger)
    delivered = _geom("MULTIPOLYGON")
    repaired = _geom("MULTIPOLYGON")
    area_delivered: Mapped[float | None] = mapped_column(Float)
    area_repaired: Mapped[float | None] = mapped_column(Float)
    repaired_by: Mapped[str] = mapped_column(Text)
    repaired_at: Mapped[datetime] = mapped_column(TS)
    run_id: Mapped[int | None] = mapped_column(BigInteger)
