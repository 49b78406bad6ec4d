"""A schemathesis fuzz run over the service's OpenAPI schema, in-process (ASGI), with the token
and the placeholder broker: no input the schema allows makes the service answer 5xx, and every
response matches the schema (status codes, content types, bodies)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from service_support import AUTH, placeholder_app

APP, _ = placeholder_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=AUTH, checks=[
        not_a_server_error, status_code_conformance, content_type_conformance,
        response_schema_conformance])
