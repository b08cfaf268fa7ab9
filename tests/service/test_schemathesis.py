"""Property-based API testing from the app's own OpenAPI schema (schemathesis), against a real server on SQLite and
on PostgreSQL (fewer examples there: the same routes, a second storage).

Every generated request — valid or not — must get a documented status with a body that matches the schema, and
never a 5xx. The model is the scripted fake. Not checked: that every schema-valid request is accepted — ids that
name nothing are 404s, and the message limits are settings, stricter than the schema can say.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from psycopg import sql
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from chatplane.storage.engine import open_storage
from chatplane.storage.keys import ApiKeyStore
from tests.conftest import make_settings
from tests.servers import ServerProcess, free_port

pytestmark = pytest.mark.e2e
EXAMPLES = {"sqlite": 25, "postgres": 15}


async def _key(url: str) -> str:
    async with open_storage(make_settings(storage_url=url)) as storage:
        return (await ApiKeyStore(storage.db).create("fuzzer"))[1]


@pytest.fixture(scope="module")
def pg_database(pg_admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for the module's server (``pg_url`` is per test)."""
    name = f"chatplane_fuzz_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield f"{pg_admin_url.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, str, int]]:
    workdir = tmp_path_factory.mktemp("schemathesis")
    backend = request.param
    url = f"sqlite:///{workdir}/fuzz.db" if backend == "sqlite" else str(request.getfixturevalue("pg_database"))
    key = asyncio.run(_key(url))
    server = ServerProcess(
        {"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": url, "CHATPLANE_RATE_LIMIT_PER_MINUTE": "0"},
        free_port(),
        workdir,
    )
    server.start()
    yield server, key, EXAMPLES[backend]
    server.stop()


def test_api_conforms_to_its_schema_and_never_fails(api: tuple[ServerProcess, str, int]) -> None:
    """Each operation gets ``EXAMPLES`` schema-valid and ``EXAMPLES`` schema-violating cases (schemathesis
    strategies driven by hypothesis directly: schemathesis' pytest plugin does not run under pytest 9)."""
    server, key, examples = api
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")

    headers = {"Authorization": f"Bearer {key}"}
    calls: list[str] = []
    for result, mode in itertools.product(schema.get_all_operations(), GenerationMode):
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            calls.append(case.operation.label)
            case.call_and_validate(
                base_url=server.url, headers=headers, timeout=30, excluded_checks=[positive_data_acceptance]
            )

        try:
            check()
        except Unsatisfiable:
            if mode is not GenerationMode.NEGATIVE:
                raise  # an operation without inputs has no schema-violating requests to make
    operations = set(calls)
    assert len(operations) >= 15  # every route of the API was exercised
    print(f"schemathesis: {len(calls)} generated requests over {len(operations)} operations, no failures")
