-- The scanned maps the map page offers: how many sheets, and their years.
SELECT count(*), coalesce(array_agg(DISTINCT jahr ORDER BY jahr) FILTER (WHERE jahr IS NOT NULL),
                          '{}')
FROM kataster.historische_karte
