"""A signal stops a campaign after the entry under way is torn down and stored as an
interrupted run; the state says so, and `--resume` would run that entry again."""

from __future__ import annotations

import json

import pytest
from support import interrupt, start_kitt, wait_for_line, wait_until
from support.stall import (
    SIGNALS,
    TARGETS,
    assert_interrupted_cleanly,
    signal_name,
    stored_runs,
)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("sig", SIGNALS, ids=signal_name)
def test_a_signal_stops_the_campaign_after_the_entry_is_stored(stall_work, sig, target):
    work = stall_work
    campaign = work["dir"] / "stalled.yaml"
    campaign.write_text(f"""\
name: stalled
models: [{work['model'].gguf_path}]
engines:
  - name: stall
    options: {{stall: requests}}
suite: {work['dir'] / 'perf.yaml'}
skip_warmup: true
""")
    home = work["dir"] / "kitt-home"
    proc = start_kitt("campaign", "run", str(campaign), env=work["env"], site=work["site"])
    wait_for_line(proc, "running throughput", stream="stderr")
    wait_until(lambda: any("REQUEST" in log.read_text()
                           for log in home.rglob("*-stall.log")),
               what="a request in flight")
    code, err = interrupt(proc, sig, group=target == "group")
    assert_interrupted_cleanly(code, err, sig)
    assert "--resume" in err
    state = json.loads((home / "campaigns" / "stalled" / "state.json").read_text())
    assert state["status"] == "interrupted"
    (entry,) = state["entries"]
    (run,) = stored_runs(work["db"])
    assert (entry["status"], entry["run_id"], entry["exit_code"]) == (
        "interrupted", run.id, 128 + sig)
    assert entry["reason"] == f"interrupted by {signal_name(sig)}; --resume runs it again"
    assert run.status == "interrupted"
