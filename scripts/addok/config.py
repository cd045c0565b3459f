"""addok configuration for the test peer started by scripts/with-addok.sh.

addok loads this file through ADDOK_CONFIG_MODULE. The Redis server and the log
directory come from the environment set by the script. The processor chain is the
French one used by the BAN (api-adresse): addok-france extracts and labels
addresses, addok-fr adds the synonyms and the phonemisation.
"""

import os

REDIS = {
    "host": "127.0.0.1",
    "port": int(os.environ["PASSERELLE_ADDOK_REDIS_PORT"]),
    "unix_socket_path": None,
    "indexes": {"db": 0},
    "documents": {"db": 1},
}

QUERY_PROCESSORS_PYPATHS = [
    "addok.helpers.text.check_query_length",
    "addok_france.extract_address",
    "addok_france.clean_query",
    "addok_france.remove_leading_zeros",
]
PROCESSORS_PYPATHS = [
    "addok.helpers.text.tokenize",
    "addok.helpers.text.normalize",
    "addok_france.glue_ordinal",
    "addok_france.fold_ordinal",
    "addok_france.flag_housenumber",
    "addok.helpers.text.synonymize",
    "addok_fr.phonemicize",
]
SEARCH_RESULT_PROCESSORS_PYPATHS = [
    "addok.helpers.results.match_housenumber",
    "addok_france.make_labels",
    "addok.helpers.results.score_by_importance",
    "addok.helpers.results.score_by_autocomplete_distance",
    "addok.helpers.results.score_by_ngram_distance",
    "addok.helpers.results.score_by_geo_distance",
    "addok.helpers.results.adjust_scores",
]
FIELDS = [
    {"key": "name", "boost": 4, "null": False},
    {"key": "street"},
    {"key": "postcode", "boost": lambda doc: 1.2 if doc.get("type") == "municipality" else 1},
    {"key": "city"},
    {"key": "housenumbers"},
    {"key": "context"},
]
FILTERS = ["type", "postcode", "citycode"]
BATCH_WORKERS = 1
LOG_DIR = os.environ["PASSERELLE_ADDOK_LOG_DIR"]
ATTRIBUTION = "Base Adresse Nationale (sample of tests/simulators/data)"
LICENCE = "ETALAB-2.0"
