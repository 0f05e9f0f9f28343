"""The API fuzzed from its own OpenAPI document: no 5xx, every answer as documented.

schemathesis generates requests for every documented operation (valid and invalid parameters)
against the real query node serving the package's snapshot, and checks each answer's status,
content type and body against ``/openapi.json``. Examples per operation are few, to keep the
run short; the generated cases differ from run to run.
"""

from __future__ import annotations

import asyncio
import traceback
import warnings
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import HypothesisDeprecationWarning, Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.core.result import Ok

from api.openapi import document
from tests.integration.explore.conftest import Node

#: What every answer must satisfy. Not schemathesis's strictness checks (an empty ``k=`` is
#: read as the default, as the project's handlers always have): answers, not leniency.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
#: Examples per operation and mode: enough to cover every parameter's edges in a few seconds.
EXAMPLES = 8


async def test_every_answer_is_documented_and_none_is_a_server_error(node: Node) -> None:
    # schemathesis calls synchronously: from a thread, while this loop serves the node.
    base_url = str(node.client.make_url("")).rstrip("/")
    with warnings.catch_warnings():
        # schemathesis's strategies draw from `random`, which hypothesis warns about.
        warnings.simplefilter("ignore", HypothesisDeprecationWarning)
        failures = await asyncio.to_thread(_fuzz, base_url)
    assert not failures, "\n\n".join(failures)


def _fuzz(base_url: str) -> list[str]:
    schema = schemathesis.openapi.from_dict(document())
    schema.config.update(base_url=base_url)
    failures: list[str] = []
    operations = 0
    for found in schema.get_all_operations():
        assert isinstance(found, Ok), found  # the document itself is valid
        operation = found.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case[Any]) -> None:
                case.call_and_validate(checks=CHECKS)

            try:
                check()
            except Unsatisfiable:  # nothing to make invalid (no parameters): nothing to send
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # noqa: BLE001 - every operation's failure is reported
                detail = "".join(traceback.format_exception(exc))[-3000:]
                failures.append(f"{operation.label} ({mode.value}): {detail}")
    # One operation per method of each path (/recommend has GET and POST).
    assert operations == sum(len(item) for item in document()["paths"].values())
    return failures
