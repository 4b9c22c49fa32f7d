-- Ownership resolved at the cost of the change: a run finds the parcels whose owners it may
-- have changed from the objects it delivered, through the bookings on a changed sheet and the
-- parcels booked on a booking it reached. Both look-ups go through an index instead of reading
-- the whole table.
CREATE INDEX ax_buchungsstelle_blatt_idx
    ON kataster_privat.ax_buchungsstelle (ist_bestandteil_von) WHERE endet IS NULL;
CREATE INDEX ax_flurstueck_gebucht_idx
    ON kataster.ax_flurstueck USING gin (ist_gebucht) WHERE endet IS NULL;
