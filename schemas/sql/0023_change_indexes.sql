-- Kataster data model, revision 0023: indexes that let a run find what it changed. The
-- address-text step (lage_text) and the change count after an import found the versions a run
-- wrote or closed, and the parcels naming a changed Lagebezeichnung, by reading every parcel
-- and every Lagebezeichnung (0.5 s and 0.7 s of a 100-parcel update on 100,000 parcels).
CREATE INDEX ax_flurstueck_run_idx ON kataster.ax_flurstueck (run_id);
CREATE INDEX ax_flurstueck_closed_run_idx ON kataster.ax_flurstueck (closed_run_id)
    WHERE closed_run_id IS NOT NULL;
CREATE INDEX ax_lagebezeichnung_run_idx ON kataster.ax_lagebezeichnung (run_id);
CREATE INDEX ax_lagebezeichnung_closed_run_idx ON kataster.ax_lagebezeichnung (closed_run_id)
    WHERE closed_run_id IS NOT NULL;
-- The Lagebezeichnungen a current parcel names (weistAuf, zeigtAuf), for one look-up per
-- changed Lagebezeichnung.
CREATE INDEX ax_flurstueck_lagen_idx ON kataster.ax_flurstueck
    USING gin ((weist_auf || zeigt_auf)) WHERE endet IS NULL;
