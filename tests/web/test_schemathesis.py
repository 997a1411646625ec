"""A property-based run of the whole API against a live `kitt web` (schemathesis): with
an admin token, with a viewer token and with none, no request makes a 5xx, no response
falls outside the OpenAPI document, and nothing succeeds without the role it needs."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from support import free_port
from support.web import seed, start_web

from kitt_web.api.openapi import document

pytestmark = pytest.mark.slow
ROLES = ("open", "viewer", "operator", "admin")
# Agent routes take an agent's own token only: every person's token is refused there
# (401; 404 names an agent id the server does not know, as after a database reset).


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("schemathesis")
    url = f"sqlite://{work / 'karr.db'}"
    seeded = seed(url, runs=12)
    env = {"KITT_HOME": str(work / "home"), "KITT_STORE": "", "KITT_AUTH_TOKEN": "",
           "XDG_CACHE_HOME": str(work / "cache")}
    port = free_port()
    web, _ = start_web("--port", str(port), "--insecure", "--store", url, env=env,
                       log=work / "web.log")
    yield {"base": f"http://127.0.0.1:{port}", "seeded": seeded}
    code, said = web.stop()
    assert code == 0, said[-2000:]
    assert "Traceback" not in said, said[said.index("Traceback"):][:3000]


# Loaded from the document itself (no server needed to collect); each call names the
# live server's base URL.
schema = schemathesis.openapi.from_dict(document())
# Derandomized: the same examples on every run, so CI is repeatable; a deeper search is
# KITT_SCHEMATHESIS_EXAMPLES=300 KITT_SCHEMATHESIS_RANDOM=1.
explore = settings(max_examples=int(os.environ.get("KITT_SCHEMATHESIS_EXAMPLES", "15")),
                   derandomize=not os.environ.get("KITT_SCHEMATHESIS_RANDOM"), deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow, HealthCheck.filter_too_much])


def needed(case) -> str:
    return case.operation.definition.raw["x-kitt-role"]


def documented_method(case) -> bool:
    """Whether the case uses its operation's own method (schemathesis also probes
    others, which are 405 for every caller)."""
    return case.method.upper() == case.operation.method.upper()


@schema.parametrize()
@explore
def test_as_admin_nothing_fails_and_everything_is_in_the_contract(server, case):
    # Every default check but one: a schema cannot say "a cursor this server gave", "a
    # run id that exists" or "a minimum below the maximum", so schema-valid requests the
    # server rightly refuses (400, 404) are not failures here. Refusing invalid data
    # (negative_data_rejection) is checked.
    case.call_and_validate(base_url=server["base"], headers=server["seeded"].auth("admin"),
                           excluded_checks=[checks.positive_data_acceptance])


@schema.parametrize()
@explore
def test_without_a_token_only_health_answers(server, case):
    response = case.call(base_url=server["base"])
    assert response.status_code < 500
    if needed(case) == "open" or not documented_method(case):
        return
    if needed(case) == "agent":  # schemathesis may send a made-up agent token
        assert response.status_code in (401, 404), (case.method, case.formatted_path)
        return
    assert response.status_code == 401, (case.method, case.formatted_path)
    assert response.json()["error"]["code"] == "unauthorized"


@schema.parametrize()
@explore
def test_a_viewer_is_refused_what_needs_more(server, case):
    response = case.call(base_url=server["base"], headers=server["seeded"].auth("viewer"))
    assert response.status_code < 500
    if not documented_method(case):
        return
    if needed(case) == "agent":
        assert response.status_code in (401, 404), (case.method, case.formatted_path)
    elif ROLES.index(needed(case)) > ROLES.index("viewer"):
        assert response.status_code == 403, (case.method, case.formatted_path)
