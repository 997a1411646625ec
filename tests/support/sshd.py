"""A private OpenSSH server on loopback for a test: its own host key, config, pid file
and authorized key (a fresh ed25519 key that logs in as the current user), stopped
afterwards. CI installs openssh-server (.ci/run)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from support import free_port, require

SSHD = "/usr/sbin/sshd"


@attrs.frozen
class SshServer:
    port: int
    identity: Path
    known_hosts: Path
    user: str

    @property
    def host(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, capture_output=True)


@contextmanager
def sshd(folder: Path, env: dict[str, str] | None = None) -> Iterator[SshServer]:
    """`env` is set in every session (sshd's SetEnv), e.g. DOCKER_HOST."""
    require("sshd", Path(SSHD).exists() and shutil.which("ssh-keygen") is not None,
            "OpenSSH's server is not installed (Debian package openssh-server)")
    folder.mkdir(parents=True, exist_ok=True)
    _keygen(folder / "host_key")
    _keygen(folder / "user_key")
    shutil.copy(folder / "user_key.pub", folder / "authorized_keys")
    port = free_port()
    setenv = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
        + (f"SetEnv {setenv}\n" if setenv else ""))
    key_type, key = (folder / "host_key.pub").read_text().split()[:2]
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {key_type} {key}\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-f", str(folder / "sshd_config"), "-E",
                             str(folder / "sshd.log")])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (folder / "sshd.log").read_text()
                assert time.monotonic() < deadline, "sshd did not listen"
                time.sleep(0.05)  # nothing to wait on but the port
        import pwd

        yield SshServer(port, folder / "user_key", folder / "known_hosts",
                        pwd.getpwuid(os.getuid()).pw_name)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
