"""Settings, tokens and the catalogue over the API: what an admin changes, what anyone
with a token reads, and what is never shown."""

from __future__ import annotations

import pytest

import kitt
from kitt_web.state import open_state, tokens


async def test_settings_report_their_source_and_saves_are_all_or_none(client, seeded,
                                                                      monkeypatch, tmp_path):
    admin = seeded.auth("admin")
    monkeypatch.setenv("KITT_MODEL_DIR", str(tmp_path / "env-models"))
    monkeypatch.delenv("DEVON_URL", raising=False)
    found = (await (await client.get("/api/v1/settings", headers=admin)).json())["settings"]
    assert found["model_dir"] == {"key": "model_dir", "value": str(tmp_path / "env-models"),
                                  "source": "environment",
                                  "description": found["model_dir"]["description"]}
    assert found["devon_url"]["source"] == "default" and found["devon_url"]["value"] == ""
    saved = await client.patch("/api/v1/settings", headers=admin,
                               json={"model_dir": "/srv/models", "devon_tab": True})
    body = (await saved.json())["settings"]
    assert (body["model_dir"]["value"], body["model_dir"]["source"]) == ("/srv/models", "saved")
    assert body["devon_tab"]["value"] is True
    # One bad value: nothing of the request is saved, and the field is named.
    bad = await client.patch("/api/v1/settings", headers=admin,
                             json={"results_dir": "/r", "devon_url": "ftp://x"})
    assert bad.status == 400 and "devon_url" in (await bad.json())["error"]["message"]
    unknown = await client.patch("/api/v1/settings", headers=admin, json={"colour": "red"})
    assert unknown.status == 400 and "colour" in (await unknown.json())["error"]["message"]
    after = (await (await client.get("/api/v1/settings", headers=admin)).json())["settings"]
    assert after["results_dir"]["source"] == "default"
    # null takes the saved value away: the environment shows through again.
    back = await client.patch("/api/v1/settings", headers=admin, json={"model_dir": None})
    assert (await back.json())["settings"]["model_dir"]["source"] == "environment"


async def test_tokens_made_over_the_api_show_their_secret_once(client, seeded):
    admin = seeded.auth("admin")
    made = await client.post("/api/v1/tokens", headers=admin,
                             json={"name": "ci gate", "role": "operator", "expires_in": "30d"})
    assert made.status == 201
    body = await made.json()
    secret, token = body["secret"], body["token"]
    assert token["role"] == "operator" and token["state"] == "active"
    assert token["expires_at"] - token["created_at"] == pytest.approx(30 * 86400, abs=5)
    listed = await (await client.get("/api/v1/tokens", headers=admin)).text()
    assert secret not in listed and secret[5:] not in listed and token["id"] in listed
    use = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/runs", headers=use)).status == 200
    revoked = await client.delete(f"/api/v1/tokens/{token['id']}", headers=admin)
    assert (await revoked.json())["token"]["state"] == "revoked"
    assert (await client.get("/api/v1/runs", headers=use)).status == 401
    missing = await client.delete("/api/v1/tokens/kitt_nothing0", headers=admin)
    assert missing.status == 404


@pytest.mark.parametrize("body", [{"name": "x", "role": "root"}, {"name": "", "role": "admin"},
                                  {"role": "viewer"}, {"name": "x", "role": "viewer",
                                                       "expires_in": "soon"},
                                  {"name": "x", "role": "viewer", "secret": "mine"},
                                  {"name": "a\nb", "role": "viewer"}])
async def test_bad_token_requests_create_nothing(client, seeded, body):
    admin = seeded.auth("admin")
    response = await client.post("/api/v1/tokens", headers=admin, json=body)
    assert response.status == 400
    with kitt.open_store(seeded.url) as store:
        assert len(tokens.list_all(open_state(store))) == 3


async def test_catalogue_lists_what_is_installed(client, seeded):
    auth = seeded.auth("viewer")
    benchmarks = (await (await client.get("/api/v1/benchmarks", headers=auth)).json())
    names = {b["name"] for b in benchmarks["benchmarks"]}
    assert names == set(kitt.installed_benchmarks())
    suites = (await (await client.get("/api/v1/suites", headers=auth)).json())["suites"]
    quick = next(s for s in suites if s["name"] == "quick")
    assert quick["valid"] and quick["benchmarks"]
    engines = (await (await client.get("/api/v1/engines", headers=auth)).json())["engines"]
    assert {e["name"] for e in engines} == set(kitt.installed_engines())
    hardware = await (await client.get("/api/v1/hardware", headers=auth)).json()
    assert hardware["fingerprint"] == kitt.take_fingerprint().fingerprint
    version = await (await client.get("/api/v1/version", headers=auth)).json()
    assert version["kitt"] == kitt.__version__
    assert "web" in {p["name"] for p in version["plugins"]}


async def test_an_invalid_suite_is_listed_with_its_problem(client, seeded, tmp_path,
                                                           monkeypatch):
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "broken.yaml").write_text("name: broken\nbenchmarks:\n  - name: no_such_bench\n")
    monkeypatch.setenv("KITT_SUITES", str(folder))
    suites = (await (await client.get("/api/v1/suites",
                                      headers=seeded.auth("viewer"))).json())["suites"]
    broken = next(s for s in suites if s["name"] == "broken")
    assert not broken["valid"] and "no_such_bench" in broken["problem"]


async def test_the_model_browser_detects_formats_by_content(client, seeded, tmp_path):
    models = tmp_path / "models"
    (models / "hf").mkdir(parents=True)
    (models / "hf" / "config.json").write_text("{}")
    (models / "hf" / "model.safetensors").write_bytes(
        b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"__metadata__":{}}'[:16])
    (models / "fake.gguf").write_bytes(b"not a gguf at all")
    (models / "split-00002-of-00002.gguf").write_bytes(b"GGUF")
    (models / ".hidden").mkdir()
    (models / ".hidden" / "x.gguf").write_bytes(b"GGUF")
    admin = seeded.auth("admin")
    await client.patch("/api/v1/settings", headers=admin, json={"model_dir": str(models)})
    found = await (await client.get("/api/v1/models", headers=admin)).json()
    by_name = {m["name"]: m for m in found["models"]}
    assert set(by_name) == {"hf", "fake.gguf"}  # later shards and hidden folders skipped
    assert by_name["fake.gguf"]["format"] is None and by_name["fake.gguf"]["problem"]
    assert all(not s["can_serve"] for s in by_name["fake.gguf"]["engines"])
    if "llamacpp" in kitt.installed_engines():
        filtered = await (await client.get("/api/v1/models?engine=llama_cpp",
                                           headers=admin)).json()
        assert all(m["servable"] for m in filtered["models"])
    unknown = await client.get("/api/v1/models?engine=warp-drive", headers=admin)
    assert unknown.status == 400


async def test_a_missing_model_folder_says_so(client, seeded, tmp_path):
    admin = seeded.auth("admin")
    await client.patch("/api/v1/settings", headers=admin,
                       json={"model_dir": str(tmp_path / "absent")})
    found = await (await client.get("/api/v1/models", headers=admin)).json()
    assert found["exists"] is False and found["models"] == [] and found["hint"]
