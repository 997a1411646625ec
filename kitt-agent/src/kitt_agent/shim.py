"""`python -m kitt_agent.shim JOB_DIR ARGV...`: the parent of a job's process, in its own
session (the job's process group). It outlives the agent, so that an agent restarted
while a job runs finds the job still going and re-attaches; and it writes the job's exit
status to `JOB_DIR/exit_code` when the job ends, which the agent reads back.

Signals to the group reach the job directly (that is how a job is cancelled); the shim
itself ignores SIGTERM and SIGINT so that it is there to record the outcome."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def _ignore(signum, frame) -> None:  # a handler, not SIG_IGN: exec resets it for the job
    pass


def main() -> int:
    job_dir, argv = Path(sys.argv[1]), sys.argv[2:]
    signal.signal(signal.SIGTERM, _ignore)
    signal.signal(signal.SIGINT, _ignore)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, cwd=job_dir)
        code = proc.wait()
    except OSError as exc:
        print(f"kitt-agent: cannot start the job: {exc}", flush=True)
        code = 127
    tmp = job_dir / ".exit_code"
    tmp.write_text(f"{code}\n")
    os.replace(tmp, job_dir / "exit_code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
