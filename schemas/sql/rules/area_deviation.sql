-- Rule area.deviation: amtliche Fläche and the computed area differ by more than
-- area_abs + area_rel × amtliche Fläche; with area_utm_correction the grid area is divided by
-- the UTM area scale k² (k from the centroid's easting).
SELECT gml_id, ARRAY[]::text[],
       'amtliche Fläche ' || amtliche_flaeche || ' m², computed '
       || round(computed::numeric, 2) || ' m² (difference '
       || round((computed - amtliche_flaeche)::numeric, 2) || ' m², tolerance '
       || round((%(area_abs)s + %(area_rel)s * amtliche_flaeche)::numeric, 2) || ' m²)',
       ST_PointOnSurface(geom)
FROM (SELECT gml_id, amtliche_flaeche, geom,
             ST_Area(geom) / CASE WHEN %(area_utm_correction)s
                 THEN power(0.9996 * (1 + power(ST_X(ST_Centroid(geom)) - 500000, 2)
                                      / (2 * power(6381000, 2))), 2)
                 ELSE 1 END AS computed
      FROM kataster.ax_flurstueck
      WHERE endet IS NULL AND amtliche_flaeche IS NOT NULL AND geom IS NOT NULL
        AND NOT ST_IsEmpty(geom) AND {scope}) a
WHERE abs(computed - amtliche_flaeche) > %(area_abs)s + %(area_rel)s * amtliche_flaeche
