"""The agent's identity and settings: `AGENT_HOME/agent.yaml` (mode 0600: it holds the
agent's token), rewritten atomically (a crash leaves the old file or the new one)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import attrs

import kitt

CONFIG_NAME = "agent.yaml"


def agent_home(given: str | Path | None = None) -> Path:
    """`--home`, else KITT_AGENT_HOME, else KITT_HOME (~/.kitt)."""
    if given:
        return Path(given).expanduser()
    env = os.environ.get("KITT_AGENT_HOME")
    return Path(env).expanduser() if env else kitt.kitt_home()


@attrs.frozen
class AgentConfig:
    server: str
    agent_id: str
    token: str
    name: str
    pin: str | None = None
    """`sha256//BASE64` of the server's public key; None: the system's CAs verify it."""
    ca_file: str | None = None
    model_dir: str | None = None
    """Local model storage (None: AGENT_HOME/models); the server's setting wins."""
    kill_grace_s: float = 30.0
    """SIGTERM to a cancelled job's processes, then SIGKILL after this long."""

    def with_token(self, token: str) -> AgentConfig:
        return attrs.evolve(self, token=token)


def config_path(home: Path) -> Path:
    return home / CONFIG_NAME


def load(home: Path) -> AgentConfig:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    path = config_path(home)
    if not path.exists():
        raise kitt.BadInput(f"{path} does not exist: this host is not enrolled",
                            hint="run kitt-agent init --server URL (with KITT_ENROLL_TOKEN)")
    try:
        data = YAML(typ="safe").load(path.read_text("utf-8"))
    except (OSError, YAMLError) as exc:
        raise kitt.BadInput(f"cannot read {path}: {exc}",
                            hint="enroll again: kitt-agent init --server URL") from None
    fields = {f.name for f in attrs.fields(AgentConfig)}
    if not isinstance(data, dict) or not {"server", "agent_id", "token", "name"} <= set(data):
        raise kitt.BadInput(f"{path} is not an agent config",
                            hint="enroll again: kitt-agent init --server URL")
    return AgentConfig(**{k: v for k, v in data.items() if k in fields})


def save(home: Path, config: AgentConfig) -> Path:
    """Write agent.yaml atomically, readable by this user only."""
    from ruamel.yaml import YAML

    home.mkdir(parents=True, exist_ok=True)
    path = config_path(home)
    data: dict[str, Any] = {k: v for k, v in attrs.asdict(config).items() if v is not None}
    fd, tmp = tempfile.mkstemp(dir=home, prefix=".agent-", suffix=".yaml")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("# kitt-agent's identity: it holds this agent's token. Keep it 0600.\n")
            YAML().dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
