"""Runtimes start and stop engine servers; engines only describe them (kitt.engine).

`native` runs the server as a child process group, `docker` as a labelled container;
`health` waits for readiness; `signals` turns SIGINT/SIGTERM into a clean teardown.
The orchestrator uses `kitt.launcher.launch_engine`, which ties these together.
"""

from kitt.runtime.server import RunningEngine, Server

__all__ = ["RunningEngine", "Server"]
