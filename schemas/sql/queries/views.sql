-- Reading the public views (pipeline/views.py). {source} is a view or kataster.flurstueck_am,
-- {filters} the fragments below joined with AND, {order} the layer's key columns.

-- name: read
SELECT *, ST_AsBinary(geom) AS _wkb FROM {source} AS v
WHERE {filters}
ORDER BY {order};

-- name: filter_gemarkung
gemarkungsnummer = %(gemarkung)s

-- name: filter_flur
flurnummer = %(flur)s

-- name: filter_bbox
ST_Intersects(geom, ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 25832))

-- name: parcels_at
kataster.flurstueck_am(%(at)s)

-- name: gemarkungen
SELECT gemarkungsnummer, gemarkung FROM kataster.gemarkung ORDER BY 1;

-- name: fluren
SELECT DISTINCT flurnummer FROM kataster.flur WHERE gemarkungsnummer = %(gemarkung)s ORDER BY 1;

-- name: refresh
REFRESH MATERIALIZED VIEW {view};

-- The district maps (pipeline/views.py refresh_derived): the Flur map's pieces (0024) from the
-- parcels, the Flur map (0020) from the pieces, the Gemarkung map (0027) from the Flur map.
-- Each statement takes arrays of ids (a piece: its Flur and cell), or NULL for all. The rows
-- with imported boundaries are written in SQL; the derived ones are read as parts (a piece's
-- parcels, a Flur's pieces, a Gemarkung's Flur maps) that pipeline/views.py joins with GEOS's
-- coverage union. kataster.flur_stueck_quelle, kataster.flur and kataster.gemarkung stay the
-- definitions (ST_Union); tests/core/test_derived.py holds the maps equal to them.

-- name: cursor_reads_all
-- The parts are read through a cursor (bounded memory on a first import) and read whole: planned
-- for the first tenth of the rows (the default), the pieces of a run's cells were read through
-- a full index scan in group order, 1.5 s instead of 0.04 s at 1,000,000 parcels.
SET LOCAL cursor_tuple_fraction = 1;

-- name: copy_unions
-- The rows of a parts query with the union of their parts, into the map table {table}.
COPY {table} ({columns}) FROM STDIN;

-- name: flur_pieces_drop
-- Every piece of the given Fluren in the given cells (a few more than the pairs a run touched
-- where a cell holds parcels of several of them: recomputing those costs little).
DELETE FROM kataster.flur_stueck
WHERE %(fluren)s::text[] IS NULL OR (id = ANY(%(fluren)s) AND zelle = ANY(%(zellen)s));

-- name: flur_piece_parts
-- kataster.flur_stueck_quelle's rows with the WKB of their parcels in place of the union (the
-- union leaves out invalid ones); named ones through the index on Flurkennzeichen and cell.
SELECT f.land || f.gemarkungsnummer || lpad(f.flurnummer::text, 3, '0') AS id,
       kataster.zelle(f.geom) AS zelle, f.land, f.gemarkungsnummer, f.flurnummer,
       array_agg(ST_AsBinary(f.geom)) AS parts
FROM kataster.ax_flurstueck f
WHERE f.endet IS NULL AND f.geom IS NOT NULL
  AND (%(fluren)s::text[] IS NULL
       OR (f.land || f.gemarkungsnummer || lpad(f.flurnummer::text, 3, '0') = ANY(%(fluren)s)
           AND kataster.zelle(f.geom) = ANY(%(zellen)s)))
GROUP BY f.land, f.gemarkungsnummer, f.flurnummer, kataster.zelle(f.geom);

-- name: flur_map_drop
DELETE FROM kataster.flur_karte WHERE %(fluren)s::text[] IS NULL OR id = ANY(%(fluren)s)
RETURNING land || gemarkungsnummer;

-- name: flur_map_fill_imported
INSERT INTO kataster.flur_karte
SELECT * FROM kataster.flur
WHERE herkunft = 'importiert' AND (%(fluren)s::text[] IS NULL OR id = ANY(%(fluren)s))
RETURNING land || gemarkungsnummer;

-- name: flur_map_parts
-- kataster.flur's derived rows, with the WKB of their pieces in place of the union.
SELECT s.id, s.land, s.gemarkungsnummer, s.flurnummer, g.bezeichnung AS gemarkung,
       'abgeleitet'::text AS herkunft, array_agg(ST_AsBinary(s.geom)) AS parts
FROM kataster.flur_stueck s
LEFT JOIN kataster.gemarkung_name g USING (land, gemarkungsnummer)
WHERE NOT EXISTS (SELECT 1 FROM kataster.bezirk b
                  WHERE b.art = 'flur' AND b.endet IS NULL AND b.land = s.land
                    AND b.gemarkungsnummer = s.gemarkungsnummer AND b.flurnummer = s.flurnummer)
  AND (%(fluren)s::text[] IS NULL OR s.id = ANY(%(fluren)s))
GROUP BY s.id, s.land, s.gemarkungsnummer, s.flurnummer, g.bezeichnung;

-- name: gemarkung_map_drop
DELETE FROM kataster.gemarkung_karte
WHERE %(gemarkungen)s::text[] IS NULL OR id = ANY(%(gemarkungen)s)
RETURNING id;

-- name: gemarkung_map_fill_imported
INSERT INTO kataster.gemarkung_karte
SELECT * FROM kataster.gemarkung
WHERE herkunft = 'importiert'
  AND (%(gemarkungen)s::text[] IS NULL OR id = ANY(%(gemarkungen)s))
RETURNING id;

-- name: gemarkung_map_parts
-- kataster.gemarkung's derived rows, with the WKB of their Flur maps in place of the union.
SELECT f.land || f.gemarkungsnummer AS id, f.land, f.gemarkungsnummer,
       min(f.gemarkung) AS gemarkung, 'abgeleitet'::text AS herkunft,
       array_agg(ST_AsBinary(f.geom)) AS parts
FROM kataster.flur_karte f
WHERE NOT EXISTS (SELECT 1 FROM kataster.bezirk b
                  WHERE b.art = 'gemarkung' AND b.endet IS NULL AND b.land = f.land
                    AND b.gemarkungsnummer = f.gemarkungsnummer)
  AND (%(gemarkungen)s::text[] IS NULL OR f.land || f.gemarkungsnummer = ANY(%(gemarkungen)s))
GROUP BY f.land, f.gemarkungsnummer;

-- name: street_names_clear
DELETE FROM kataster.strassenname;

-- name: street_names_fill
INSERT INTO kataster.strassenname SELECT * FROM kataster.strassenname_quelle;

-- name: street_names_drop_ids
DELETE FROM kataster.strassenname WHERE id = ANY(%(ids)s);

-- name: street_names_fill_ids
-- kataster.strassenname_quelle's rows named by ids (Flurkennzeichen:Straße), written so that
-- PostgreSQL starts from the parcels that count in them (the index on kataster.strassen_ids,
-- 0025): the view filtered by id would cut the address text of every parcel first.
-- tests/core/test_derived.py holds the two equal.
INSERT INTO kataster.strassenname
SELECT * FROM (
    SELECT f.land || f.gemarkungsnummer || lpad(f.flurnummer::text, 3, '0') || ':' || s.strasse
               AS id,
           s.strasse, f.land, f.gemarkungsnummer, f.flurnummer, count(*)::integer,
           'abgeleitet'::text,
           ST_Centroid(ST_Collect(ST_PointOnSurface(f.geom)))::geometry(Point, 25832)
    FROM kataster.ax_flurstueck f, unnest(kataster.strassen(f.lage)) AS s(strasse)
    WHERE f.endet IS NULL AND f.geom IS NOT NULL AND f.lage IS NOT NULL
      AND kataster.strassen_ids(f.land || f.gemarkungsnummer
                                || lpad(f.flurnummer::text, 3, '0'), f.lage) && %(ids)s::text[]
      AND s.strasse <> '' AND f.flurnummer IS NOT NULL
    GROUP BY f.land, f.gemarkungsnummer, f.flurnummer, s.strasse) n
WHERE n.id = ANY(%(ids)s);

-- name: house_numbers_clear
DELETE FROM kataster.hausnummer;

-- name: house_numbers_fill
INSERT INTO kataster.hausnummer SELECT * FROM kataster.hausnummer_quelle;

-- name: house_numbers_drop_ids
DELETE FROM kataster.hausnummer WHERE id = ANY(%(ids)s);

-- name: house_numbers_fill_ids
-- kataster.hausnummer_quelle's rows of the presentation objects and buildings named by ids,
-- written so that PostgreSQL starts from them: the view, filtered by id, would group the
-- numbers of every building and collect every presentation object first.
-- tests/core/test_derived.py holds the two equal.
INSERT INTO kataster.hausnummer
SELECT pto.gml_id, coalesce(nullif(pto.attrs->>'schriftinhalt', ''), l.hausnummer),
       'Präsentationsobjekt', pto.geom::geometry(Point, 25832)
FROM kataster.ax_objekt pto
LEFT JOIN kataster.ax_lagebezeichnung l
  ON l.endet IS NULL
 AND l.gml_id = regexp_replace(pto.attrs->>'dientZurDarstellungVon', '^(urn:adv:oid:|#)', '')
WHERE pto.gml_id = ANY(%(ids)s) AND pto.objektart = 'AP_PTO' AND pto.endet IS NULL
  AND pto.attrs->>'art' = 'HNR' AND GeometryType(pto.geom) = 'POINT'
  AND coalesce(nullif(pto.attrs->>'schriftinhalt', ''), l.hausnummer) IS NOT NULL
UNION ALL
SELECT g.gml_id, coalesce(n.hausnummer, substring(g.lage FROM '(\d+ ?[a-zA-Z]?)$')),
       'abgeleitet', ST_PointOnSurface(g.geom)::geometry(Point, 25832)
FROM kataster.ax_gebaeude g
CROSS JOIN LATERAL (
    SELECT string_agg(DISTINCT l.hausnummer, ', ') AS hausnummer,
           bool_or(EXISTS (SELECT 1 FROM kataster.ax_objekt p
                           WHERE p.objektart = 'AP_PTO' AND p.endet IS NULL
                             AND p.attrs->>'dientZurDarstellungVon' = r.ref
                             AND p.attrs->>'art' = 'HNR'
                             AND GeometryType(p.geom) = 'POINT')) AS mit_pto
    FROM unnest(kataster.verweise(g.attrs->'zeigtAuf')) AS r(ref)
    JOIN kataster.ax_lagebezeichnung l
      ON l.endet IS NULL AND l.gml_id = regexp_replace(r.ref, '^(urn:adv:oid:|#)', '')
    WHERE l.hausnummer IS NOT NULL) n
WHERE g.gml_id = ANY(%(ids)s) AND g.endet IS NULL AND g.geom IS NOT NULL
  AND NOT coalesce(n.mit_pto, false)
  AND coalesce(n.hausnummer, substring(g.lage FROM '(\d+ ?[a-zA-Z]?)$')) IS NOT NULL;

-- name: touched_house_numbers
-- The presentation objects and buildings whose house number a run may have changed: those it
-- delivered or ended ({gebaeude}, {objekte}: their staging tables; the parameters ending in
-- _ended: the ids its operations ended), the ones that show or name an address it delivered
-- or ended ({lagen}), and the buildings that name the address a presentation object it delivered or ended shows,
-- before or after (then the building's number is shown by the object, or no longer).
WITH lagen AS (
    SELECT ARRAY({lagen}) || %(lagen_ended)s::text[] AS ids),
refs AS (   -- the ways a reference to one of them is written
    SELECT ids || ARRAY(SELECT 'urn:adv:oid:' || i FROM unnest(ids) AS i)
               || ARRAY(SELECT '#' || i FROM unnest(ids) AS i) AS refs
    FROM lagen),
ptos AS (
    SELECT o.gml_id, o.attrs->>'dientZurDarstellungVon' AS ref
    FROM kataster.ax_objekt o
    WHERE o.gml_id = ANY(ARRAY({objekte}) || %(objekte_ended)s::text[])
      AND o.objektart = 'AP_PTO' AND (o.endet IS NULL OR o.closed_run_id = %(run)s))
SELECT gml_id FROM ptos
UNION
SELECT unnest(ARRAY({gebaeude}) || %(gebaeude_ended)s::text[])
UNION
SELECT p.gml_id FROM kataster.ax_objekt p
WHERE p.objektart = 'AP_PTO' AND p.endet IS NULL
  AND p.attrs->>'dientZurDarstellungVon' = ANY((SELECT refs FROM refs)::text[])
UNION
SELECT g.gml_id FROM kataster.ax_gebaeude g
WHERE g.endet IS NULL
  AND kataster.verweise(g.attrs->'zeigtAuf')
      && ((SELECT refs FROM refs) || ARRAY(SELECT ref FROM ptos WHERE ref IS NOT NULL));

-- name: touched_districts
-- The Fluren, cells (kataster.zelle, 0024) and street-name ids (kataster.strassen_ids, 0025)
-- of the parcels a run delivered (their gml_ids from its staging table) or ended, in their
-- versions before and after the run; the cell is NULL for a parcel without geometry. What
-- the maps draw of a parcel is its geometry and Flur (the pieces), with its address text (the
-- street names): a parcel whose one version before the run and one version after (inserted
-- by it) agree in all of these changes no map and is left out; where they agree in geometry
-- and Flur only, its cell is NULL (its piece stays as it is).
WITH v AS (
    SELECT f.gml_id, f.land || f.gemarkungsnummer || lpad(f.flurnummer::text, 3, '0') AS flur,
           f.geom, f.lage, f.endet IS NULL AS aktuell, f.run_id = %(run)s AS neu
    FROM kataster.ax_flurstueck f
    WHERE f.gml_id = ANY(ARRAY({delivered}) || %(ended)s::text[])
      AND (f.endet IS NULL OR f.closed_run_id = %(run)s)),
same AS (
    SELECT gml_id, count(DISTINCT (flur, ST_AsEWKB(geom))) = 1 AS shape,
           count(DISTINCT (flur, ST_AsEWKB(geom), lage)) = 1 AS drawn
    FROM v
    GROUP BY gml_id
    HAVING count(*) = 2 AND count(*) FILTER (WHERE aktuell AND neu) = 1
       AND count(*) FILTER (WHERE NOT aktuell AND NOT neu) = 1)
SELECT v.flur, CASE WHEN s.shape THEN NULL ELSE kataster.zelle(v.geom) END,
       kataster.strassen_ids(v.flur, v.lage)
FROM v LEFT JOIN same s USING (gml_id)
WHERE s.drawn IS NOT TRUE;

-- name: staged_ids
SELECT gml_id FROM {stage}

-- name: no_ids
SELECT NULL::text WHERE false
