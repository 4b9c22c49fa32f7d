-- Rule id.syntax: current parcels whose Flurstückskennzeichen is malformed (the one key
-- grammar, pipeline/kennzeichen.py) or disagrees with land, Gemarkung, Flur, Zähler, Nenner.
-- Columns of every rule file: object id, related ids, message, location.
SELECT gml_id, ARRAY[]::text[], 'Flurstückskennzeichen ' || coalesce(flurstueckskennzeichen, 'NULL')
       || CASE WHEN flurstueckskennzeichen !~ %(fsk_re)s THEN ' is malformed'
               ELSE ' disagrees with land ' || coalesce(land, '?') || ', Gemarkung '
                    || coalesce(gemarkungsnummer, '?') || ', Flur ' || coalesce(flurnummer::text, '?')
                    || ', Zähler ' || coalesce(zaehler::text, '?') || ', Nenner '
                    || coalesce(nenner, '-') END,
       ST_PointOnSurface(geom)
FROM kataster.ax_flurstueck
WHERE endet IS NULL AND {scope}
  AND CASE WHEN flurstueckskennzeichen IS NULL OR flurstueckskennzeichen !~ %(fsk_re)s
           THEN true
           ELSE land IS DISTINCT FROM substr(flurstueckskennzeichen, 1, 2)
             OR gemarkungsnummer IS DISTINCT FROM substr(flurstueckskennzeichen, 3, 4)
             OR flurnummer IS DISTINCT FROM
                    nullif(substr(flurstueckskennzeichen, 7, 3), '___')::int
             OR zaehler IS DISTINCT FROM substr(flurstueckskennzeichen, 10, 5)::int
             OR coalesce(nenner, '') <> coalesce(nullif(ltrim(replace(
                    substr(flurstueckskennzeichen, 15, 4), '_', ''), '0'), ''), '')
      END
