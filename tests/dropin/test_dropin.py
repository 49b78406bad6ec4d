"""The drop-in scenarios (tests/features/dropin.feature) over every backend (see conftest.py)."""

import pytest
from pytest_bdd import scenarios

# pytest-bdd requests step fixtures at run time; naming the parametrized fixture here puts it in
# every scenario's closure at collection time, so each scenario runs once per backend.
pytestmark = pytest.mark.usefixtures("backend")

scenarios("dropin.feature")
