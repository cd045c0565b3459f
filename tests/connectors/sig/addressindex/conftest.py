from __future__ import annotations

from pathlib import Path

import pytest

from connectors.sig.addressindex import AddressIndex, build_index

SAMPLE = Path(__file__).resolve().parents[3] / "simulators" / "data" / "addresses-sample.csv"

HEADER = "id;numero;suffixe;nom_voie;code_postal;code_insee;nom_commune;lon;lat\n"
# Real street names of Paris 1er and 8e, placed near their true positions.
EXTRA_ROWS = """\
75101_8158_00163;163;;Rue Saint-Honoré;75001;75101;Paris 1er Arrondissement;2.340546;48.862134
75101_8158_00165;165;;Rue Saint-Honoré;75001;75101;Paris 1er Arrondissement;2.340105;48.862348
75108_3733_00010;10;;Avenue des Champs-Élysées;75008;75108;Paris 8e Arrondissement;2.311570;48.866940
75108_3733_00012;12;;Avenue des Champs-Élysées;75008;75108;Paris 8e Arrondissement;2.311000;48.867200
75108_9029_00004;4;;Place du 1er Mai;75008;75108;Paris 8e Arrondissement;2.314000;48.870000
05061_0500_00003;3;;Rue de Rivoli;05000;05061;Gap;6.079000;44.559000
"""


@pytest.fixture(scope="session")
def sample_index() -> AddressIndex:
    return build_index([SAMPLE])


@pytest.fixture(scope="session")
def extra_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("extra") / "extra.csv"
    path.write_text(HEADER + EXTRA_ROWS, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def index(extra_csv: Path) -> AddressIndex:
    return build_index([SAMPLE, extra_csv])
