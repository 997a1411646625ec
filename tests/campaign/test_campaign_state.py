"""The state file: atomic writes, recovery after a killed process, plan merging."""

from __future__ import annotations

import json
from pathlib import Path

from kitt._campaign.model import CampaignSpec, EngineSpec, Entry, ModelSpec
from kitt._campaign.state import (
    load_state,
    merge_plan,
    new_state,
    recover_interrupted,
    start_attempt,
    state_path,
)
from kitt.records import EngineConfig


def _spec(tmp_path: Path, labels: list[str]) -> tuple[CampaignSpec, list[Entry]]:
    engine = EngineSpec("llamacpp", EngineConfig(engine="llamacpp"))
    models = tuple(ModelSpec(str(tmp_path / f"{label}.gguf"), label) for label in labels)
    spec = CampaignSpec(name="st", path=tmp_path / "c.yaml", models=models,
                        engines=(engine,), output=tmp_path / "out")
    return spec, [Entry(f"{m.label}@llamacpp", m, engine, "quick", "gguf", "F32")
                  for m in models]


def test_a_killed_process_leaves_running_entries_that_resume_sorts_out(tmp_path,
                                                                       monkeypatch):
    monkeypatch.setenv("KITT_HOME", str(tmp_path / "home"))
    spec, plan = _spec(tmp_path, ["stored", "lost", "partial"])
    state = new_state(spec, plan)
    for entry in state.entries:
        start_attempt(entry, tmp_path / "out" / entry["id"])
    # The process was killed after `stored` was stored but before the state said so,
    # during `lost` (nothing written), and while `partial` was being stored as interrupted.
    for name, status in (("stored@llamacpp", "passed"), ("partial@llamacpp", "error")):
        folder = tmp_path / "out" / name
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(
            {"id": f"run-{name}", "status": status, "finished_at": "2025-01-01T00:00:00Z"}))
    state.save()

    again = load_state(state_path("st"))
    assert again is not None
    assert recover_interrupted(again) == ["stored@llamacpp", "lost@llamacpp",
                                          "partial@llamacpp"]
    stored, lost, partial = again.entries
    assert (stored["status"], stored["run_id"]) == ("passed", "run-stored@llamacpp")
    assert (lost["status"], lost["run_id"]) == ("error", None)
    assert (partial["status"], partial["run_id"]) == ("error", "run-partial@llamacpp")
    assert [len(e["history"]) for e in again.entries] == [1, 1, 1]


def test_state_file_is_replaced_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("KITT_HOME", str(tmp_path / "home"))
    spec, plan = _spec(tmp_path, ["a"])
    state = new_state(spec, plan)
    state.save()
    state.save()
    folder = state_path("st").parent
    assert sorted(p.name for p in folder.iterdir()) == ["state.json"]  # no temp left over
    assert json.loads(state_path("st").read_text())["entries"][0]["status"] == "pending"


def test_merge_keeps_history_adds_new_pairs_and_marks_removed_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("KITT_HOME", str(tmp_path / "home"))
    spec, plan = _spec(tmp_path, ["a", "b"])
    state = new_state(spec, plan)
    state.entry("a@llamacpp").update(status="passed", run_id="r1")
    spec2, plan2 = _spec(tmp_path, ["a", "c"])
    merge_plan(state, spec2, plan2)
    by_id = {e["id"]: e for e in state.entries}
    assert (by_id["a@llamacpp"]["status"], by_id["a@llamacpp"]["run_id"]) == ("passed", "r1")
    assert by_id["c@llamacpp"]["status"] == "pending"
    assert by_id["b@llamacpp"]["in_plan"] is False
    assert state.counts() == {"passed": 1, "pending": 1}
