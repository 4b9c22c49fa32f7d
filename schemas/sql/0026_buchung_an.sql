-- Kataster data model, revision 0026: the an references kept as a table. The owner rules and
-- the ownership walk followed a temporary edge table (booking -> the booking it points at with
-- an) that every run built from every current booking, twice (the import's ownership step and
-- the validation after it): about 0.15 s each on 100,000 parcels, growing with the city.
-- kataster_privat.buchung_an now keeps those edges; a run replaces the edges of the bookings it
-- delivered or ended (pipeline.validation.owner.keep_edges), and refills them whole where it
-- resolves every parcel's owners. kataster_privat.buchung_an_quelle stays their definition.
CREATE VIEW kataster_privat.buchung_an_quelle AS
SELECT gml_id AS src, unnest(an) AS dst
FROM kataster_privat.ax_buchungsstelle WHERE endet IS NULL AND an IS NOT NULL;

CREATE TABLE kataster_privat.buchung_an AS SELECT * FROM kataster_privat.buchung_an_quelle;
CREATE INDEX buchung_an_src_idx ON kataster_privat.buchung_an (src);
CREATE INDEX buchung_an_dst_idx ON kataster_privat.buchung_an (dst);
-- Statistics now: the first run's plans read them (without, the ownership step of a
-- 100-parcel update took 0.9 s instead of 0.25 s).
ANALYZE kataster_privat.buchung_an;
REVOKE ALL ON kataster_privat.buchung_an, kataster_privat.buchung_an_quelle FROM PUBLIC;

-- The Namensnummern of a sheet (the owner rules' scope of a run, the shares of a sheet): they
-- were found by reading every Namensnummer.
CREATE INDEX ax_namensnummer_blatt_idx
    ON kataster_privat.ax_namensnummer (ist_bestandteil_von) WHERE endet IS NULL;
