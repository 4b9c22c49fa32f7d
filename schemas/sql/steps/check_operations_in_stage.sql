-- Part of check_operations: the target is in this delivery (<stage>: the stage table).
OR EXISTS (SELECT 1 FROM {stage} s
           WHERE s.gml_id = o.gml_id AND (o.beginnt IS NULL OR s.beginnt = o.beginnt))
