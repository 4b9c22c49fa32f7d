-- Step check_operations: the update operations of a delivery (in the temporary table
-- step_operations) whose target exists neither in the table nor in this delivery's staged rows.
-- <target>: the target table; <in_stage>: an OR EXISTS over the stage table, or nothing.
SELECT n FROM step_operations o
WHERE tbl = %s
  AND NOT (EXISTS (SELECT 1 FROM {target} t
                   WHERE t.gml_id = o.gml_id AND (o.beginnt IS NULL OR t.beginnt = o.beginnt))
           {in_stage})
