# MapServer 8 refuses to run without this file (MAPSERVER_CONFIG_FILE), filled in by
# scripts/with-gis.sh: @WORKDIR@ is the directory of the two generated mapfiles, the
# same layers with MapServer's default numberMatched behaviour and with it computed.
CONFIG
  ENV
    # Only the aliases below can be served: a map=/path/of/any/file is refused.
    MS_MAP_NO_PATH "1"
    MS_ERRORFILE "@WORKDIR@/mapserver-errors.log"
  END
  MAPS
    HAUTES_ALPES "@WORKDIR@/hautes-alpes.map"
    HAUTES_ALPES_COUNTED "@WORKDIR@/hautes-alpes-counted.map"
  END
END
