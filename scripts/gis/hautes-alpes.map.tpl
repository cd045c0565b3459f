# MapServer 8 mapfile of the GIS test peer, filled in by scripts/with-gis.sh:
# @DATA@ is the absolute path of demo/data/gis, @URL@ the URL the runner serves,
# @NUMBER_MATCHED@ "false" (MapServer's default) or "true" (see docs/gis-peers.md),
# @OGCAPI_URL@ the URL of MapServer's own OGC API - Features for this map.
MAP
  NAME "hautes_alpes"
  EXTENT 5.40 44.17 7.04 45.11
  SIZE 800 600
  PROJECTION "init=epsg:4326" END

  # OGR's GeoJSON writer; STORAGE=stream sends it as it is written instead of via a file.
  OUTPUTFORMAT
    NAME "geojson"
    DRIVER "OGR/GEOJSON"
    MIMETYPE "application/geo+json"
    FORMATOPTION "STORAGE=stream"
    FORMATOPTION "FORM=SIMPLE"
  END

  WEB
    METADATA
      "ows_title"                 "Hautes-Alpes (communes approchées, secteurs de collecte de Gap)"
      "ows_abstract"              "Pair de test : limites approchées tirées de la BAN, pas des limites officielles."
      "ows_contactorganization"   "passerelle-hub (tests)"
      "ows_onlineresource"        "@URL@"
      "ows_srs"                   "EPSG:4326 EPSG:2154 EPSG:3857"
      "ows_enable_request"        "*"
      "wfs_getfeature_formatlist" "geojson"
      # Small on purpose: the 161 communes then need four pages.
      "wfs_maxfeatures"           "50"
      # Off by default: numberMatched is then "unknown" until the last page, RESULTTYPE=hits
      # counts at most wfs_maxfeatures, and the GeoJSON output has no numberMatched.
      "wfs_compute_number_matched" "@NUMBER_MATCHED@"
      # Without it the links of MapServer's OGC API repeat the request path.
      "oga_onlineresource"        "@OGCAPI_URL@"
      "oga_max_limit"             "50"
    END
  END

  LAYER
    NAME "communes"
    TYPE POLYGON
    STATUS ON
    CONNECTIONTYPE OGR
    CONNECTION "@DATA@/communes-05.geojson"
    DATA "communes-05"
    PROJECTION "init=epsg:4326" END
    METADATA
      "ows_title"           "Communes des Hautes-Alpes (limites approchées)"
      "gml_include_items"   "all"
      "gml_featureid"       "insee"
      "gml_types"           "auto"
      "wfs_use_default_extent_for_getfeature" "false"
    END
    TEMPLATE "void"
  END

  LAYER
    NAME "secteurs_collecte"
    TYPE POLYGON
    STATUS ON
    CONNECTIONTYPE OGR
    CONNECTION "@DATA@/secteurs-collecte-gap.geojson"
    DATA "secteurs-collecte-gap"
    PROJECTION "init=epsg:4326" END
    METADATA
      "ows_title"           "Secteurs de collecte des déchets de Gap (illustratifs)"
      "gml_include_items"   "all"
      "gml_featureid"       "secteur"
      "gml_types"           "auto"
      "wfs_use_default_extent_for_getfeature" "false"
    END
    TEMPLATE "void"
  END

  LAYER
    NAME "communes_points"
    TYPE POINT
    STATUS ON
    CONNECTIONTYPE OGR
    CONNECTION "@DATA@/communes-05-points.geojson"
    DATA "communes-05-points"
    PROJECTION "init=epsg:4326" END
    METADATA
      "ows_title"           "Communes des Hautes-Alpes (point moyen des adresses)"
      "gml_include_items"   "all"
      "gml_featureid"       "insee"
      "gml_types"           "auto"
      "wfs_use_default_extent_for_getfeature" "false"
    END
    TEMPLATE "void"
  END
END
