from tests.integration.conftest import api  # noqa: F401 - the API fixture, shared
