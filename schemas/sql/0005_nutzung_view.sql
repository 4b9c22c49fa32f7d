-- Kataster data model, revision 0005: public view of land use ("tatsächliche Nutzung").
CREATE VIEW kataster.nutzung AS
SELECT gml_id, objektart, substr(objektart, 4) AS nutzungsart, beginnt,
       ST_Area(geom) AS geometrie_flaeche, geom
FROM kataster.ax_nutzung
WHERE endet IS NULL;
