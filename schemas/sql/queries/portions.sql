-- NBA portions applied per profile and delivery (pipeline/portions.py).

-- name: newest_delivery
SELECT max(datum),
       string_agg(DISTINCT datei, ', ') FILTER (
           WHERE datum = (SELECT max(datum) FROM kataster.nba_portion
                          WHERE profilkennung = %(profil)s))
FROM kataster.nba_portion WHERE profilkennung = %(profil)s;

-- name: deliveries
SELECT datum, max(gesamtzahl), array_agg(laufende_nummer)
FROM kataster.nba_portion WHERE profilkennung = %(profil)s
GROUP BY datum;

-- name: record
-- A re-delivered part keeps its first run.
INSERT INTO kataster.nba_portion (profilkennung, datum, laufende_nummer, gesamtzahl, datei, run_id)
VALUES (%(profil)s, %(datum)s, %(teil)s, %(gesamtzahl)s, %(datei)s, %(run)s)
ON CONFLICT DO NOTHING;

-- name: all_deliveries
SELECT profilkennung, datum, max(gesamtzahl), array_agg(laufende_nummer)
FROM kataster.nba_portion
WHERE %(profil)s::text IS NULL OR profilkennung = %(profil)s
GROUP BY 1, 2
ORDER BY 1, 2;
