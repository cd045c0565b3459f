# The two commands of the README: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: install run test test-sqlite lint docs bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml tests/example_plugin/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]" -e tests/example_plugin
	touch $@

# The hub on http://127.0.0.1:8000 with SQLite under var/ and the offline demo instances.
run: install
	$(BIN)/passerelle migrate
	$(BIN)/passerelle import demo/config.yaml
	PASSERELLE_ADMIN_TOKENS=$${PASSERELLE_ADMIN_TOKENS:-demo-admin-token} $(BIN)/passerelle serve

# The whole suite, on SQLite and on a private PostgreSQL, with a private Redis, a real addok and real GIS
# servers (MapServer, pygeoapi), started for the run.
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	scripts/with-postgresql.sh scripts/with-redis.sh scripts/with-addok.sh scripts/with-gis.sh $(BIN)/pytest

test-sqlite: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

docs: install
	$(BIN)/passerelle docs docs/reference --distribution passerelle-hub

bench: install
	$(BIN)/pip install --quiet -e ".[test,bench]"
	$(BIN)/python bench/overhead/run.py
	$(BIN)/python bench/slow_upstream/run.py
	$(BIN)/python bench/cache/run.py
	$(BIN)/python bench/address/run.py
	$(BIN)/python bench/gis/run.py

clean:
	rm -rf $(VENV) .venv-addok .venv-gis var .pytest_cache .ruff_cache
