"""Validation: one rule registry, the rules' implementations and the findings.

``rules``       the registry: every rule's id, severity, German title and explanation,
                parameters, privacy and how it is checked
``findings``    the finding and its stable key; storing, fixing, status changes, visibility
``checks``      database-free geometry checks shared with the importers
``stages``      the vectorised stages (shapely/GEOS) and the pipeline that chains them
``partitions``  reading a partition and running the stages in Dask workers
``sql_rules``   the set-based rules (``schemas/sql/rules/``)
``owner``       the owner rules (Buchungen, Namensnummern, shares)
``run``         ``validate``: dispatch by the registry, one run of kind validate

The package imports nothing itself, so that importers may use the registry, the finding and
the checks without loading the validation.
"""
