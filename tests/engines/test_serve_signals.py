"""`kitt engines serve` stops cleanly on SIGINT and SIGTERM, to KITT alone or to its
process group, in preflight, while waiting for health, and while serving; the engine is
the `stall` test engine (tests/fixtures/plugins/kitt-engine-stall)."""

from __future__ import annotations

import pytest
from support import free_port, interrupt, start_kitt, wait_for_line, wait_until
from support.stall import SIGNALS, TARGETS, assert_interrupted_cleanly, engine_log, signal_name

# phase -> (the engine's `stall` option, what shows KITT is there)
PHASES = {
    "preflight": ("preflight", "stderr:stall: waiting in preflight"),
    "health wait": ("health", "log:HEALTH polled"),
    "serving": ("requests", "stdout:http://"),
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("sig", SIGNALS, ids=signal_name)
@pytest.mark.parametrize("phase", PHASES)
def test_serve_stops_on_a_signal_in_every_phase(stall_work, phase, sig, target):
    stall, reached = PHASES[phase]
    logs = stall_work["dir"] / "logs"
    proc = start_kitt("engines", "serve", "-m", str(stall_work["model"].gguf_path),
                      "-e", "stall", "-O", f"stall={stall}", "--port", str(free_port()),
                      "--log-dir", str(logs), env=stall_work["env"], site=stall_work["site"])
    where, text = reached.split(":", 1)
    if where == "log":
        wait_until(lambda: text in engine_log(logs), what=f"{text!r} in the engine log")
    else:
        wait_for_line(proc, text, stream=where)
    code, err = interrupt(proc, sig, group=target == "group")
    assert_interrupted_cleanly(code, err, sig)
    if phase != "preflight":
        assert "the engine was stopped" in err
        assert "TERM received" in engine_log(logs)  # a graceful stop first
