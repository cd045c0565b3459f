# pygeoapi configuration of the GIS test peer, filled in by scripts/with-gis.sh:
# @PORT@ is the port gunicorn listens on, @DATA@ the absolute path of demo/data/gis.
server:
  bind: {host: 127.0.0.1, port: @PORT@}
  url: http://127.0.0.1:@PORT@
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  languages: [fr-FR]
  # Small like MapServer's wfs_maxfeatures, so that the 161 communes need several pages.
  limits: {default_items: 10, max_items: 50}
  map: {url: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png', attribution: 'OpenStreetMap'}
logging: {level: ERROR}
metadata:
  identification:
    title: Hautes-Alpes (test peer)
    description: OGC API - Features peer of the passerelle-hub tests
    keywords: [communes, collecte]
    keywords_type: theme
    terms_of_service: https://www.etalab.gouv.fr/licence-ouverte-open-licence/
    url: http://127.0.0.1
  license: {name: Licence Ouverte 2.0, url: https://www.etalab.gouv.fr/licence-ouverte-open-licence/}
  provider: {name: passerelle-hub tests, url: http://127.0.0.1}
  contact: {name: passerelle-hub tests, email: tests@example.org}
resources:
  communes:
    type: collection
    title: Communes des Hautes-Alpes (limites approchées)
    description: Cellules de Voronoi des adresses BAN regroupées par commune; pas des limites officielles
    keywords: [communes, insee]
    extents:
      spatial: {bbox: [5.40, 44.17, 7.04, 45.11], crs: http://www.opengis.net/def/crs/OGC/1.3/CRS84}
    providers:
      - type: feature
        name: GeoJSON
        data: @DATA@/communes-05.geojson
        id_field: insee
  secteurs_collecte:
    type: collection
    title: Secteurs de collecte des déchets de Gap (illustratifs)
    description: Découpage et jours de collecte inventés; géométrie tirée des adresses BAN
    keywords: [collecte, déchets]
    extents:
      spatial: {bbox: [6.01, 44.49, 6.14, 44.64], crs: http://www.opengis.net/def/crs/OGC/1.3/CRS84}
    providers:
      - type: feature
        name: GeoJSON
        data: @DATA@/secteurs-collecte-gap.geojson
        id_field: secteur
  communes_points:
    type: collection
    title: Communes des Hautes-Alpes (point moyen des adresses)
    description: Un point par commune, moyenne des coordonnées de ses adresses BAN
    keywords: [communes, insee]
    extents:
      spatial: {bbox: [5.46, 44.21, 6.94, 45.06], crs: http://www.opengis.net/def/crs/OGC/1.3/CRS84}
    providers:
      - type: feature
        name: GeoJSON
        data: @DATA@/communes-05-points.geojson
        id_field: insee
