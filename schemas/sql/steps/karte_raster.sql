-- The size and resolution of the COG the step wrote for a sheet's open version.
UPDATE kataster.karte SET breite = %(breite)s, hoehe = %(hoehe)s, aufloesung_m = %(aufloesung)s
WHERE gml_id = %(gml_id)s AND endet IS NULL
