"""Synthetic data for tests, benchmarks and the demo: nothing here is used by an import.

``city``        a generated city (parcels, buildings, addresses, districts; planted errors),
                written as GeoPackage and friends
``nas``         the same city as NAS (GeoInfoDok 6.0 or 7.1): extracts and NBA portions
``nas_writer``  writing NAS documents from plain dicts
``scan``        scanned historical map sheets with ground control points

The package imports nothing itself.
"""
