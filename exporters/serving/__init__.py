"""``kataster serve``: MapServer 8 (WMS 1.3.0, WFS 2.0) as a FastCGI pool behind nginx, pygeoapi
(OGC API Features) under gunicorn, and the map page, all behind one port.

Everything is generated into a run directory from the style source (``exporters/layers.py``):

``settings``  what the services share: the publisher, the CRSs, connection pieces, paths
``mapfile``   the mapfiles (one per drawing CRS), MapServer's templates and fonts
``webserver`` the nginx configuration and the port checks
``ogcapi``    pygeoapi's configuration and its pages (local scripts, German texts)
``provider``  pygeoapi's feature provider for our views
``page``      the map page (Leaflet)
``server``    process supervision: start, wait, stop TERM → wait → KILL by pid

The package imports nothing itself.
"""
