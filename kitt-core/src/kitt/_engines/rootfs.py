"""Self-contained images from a host binary, for machines that cannot reach a registry.

The image's root filesystem is the binary (under /app), the shared libraries `ldd`
resolves for it, the dynamic loader, and the `libggml*` backends beside the binary
(llama.cpp may dlopen those, so `ldd` does not list them). `docker import` turns it into
an image: no base image, no network. A content label (a hash of every file) makes
rebuilding idempotent.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from kitt._engines.images import CONTENT_LABEL
from kitt.errors import KittError

if TYPE_CHECKING:
    from docker import DockerClient

APP_DIR = "/app"
_LDD_LINE = re.compile(r"^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$")


def rootfs_files(binary: Path, sibling_globs: tuple[str, ...] = ("libggml*.so*",)
                 ) -> dict[str, Path]:
    """Path in the image -> host file, for `binary` and everything it needs."""
    binary = binary.resolve()
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise KittError(f"ldd {binary} failed: {done.stderr.strip() or done.stdout.strip()}",
                        hint="the binary must be a dynamically linked Linux executable")
    if "not found" in done.stdout:
        missing = [line.split()[0] for line in done.stdout.splitlines() if "not found" in line]
        raise KittError(f"{binary.name} needs libraries that are missing: {', '.join(missing)}",
                        hint="fix the binary's installation first")
    files: dict[str, Path] = {f"{APP_DIR}/{binary.name}": binary}
    for line in done.stdout.splitlines():
        match = _LDD_LINE.match(line)
        if not match:
            continue  # linux-vdso and friends have no file
        host = Path(match[1])
        # Libraries beside the binary go to /app; system ones keep their path.
        inside = f"{APP_DIR}/{host.name}" if host.parent == binary.parent else str(host)
        files[inside] = host
    for pattern in sibling_globs:
        for host in binary.parent.glob(pattern):
            files.setdefault(f"{APP_DIR}/{host.name}", host)
    return files


def content_hash(files: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for inside in sorted(files):
        digest.update(inside.encode() + b"\0")
        with files[inside].open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:32]


def import_binary_image(client: DockerClient, binary: Path, tag: str) -> bool:
    """Make `tag` from `binary` unless an image with the same content exists.
    Returns whether it was (re)built."""
    from docker.errors import ImageNotFound

    files = rootfs_files(binary)
    digest = content_hash(files)
    try:
        existing = client.images.get(tag)
        if (existing.labels or {}).get(CONTENT_LABEL) == digest:
            return False
    except ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="kitt-rootfs-") as tmp:
        tar_path = Path(tmp) / "rootfs.tar"
        with tarfile.open(tar_path, "w") as tar:
            for inside in sorted(files):
                # Dereference: the image must hold contents, not links to host paths.
                info = tar.gettarinfo(str(files[inside].resolve()), arcname=inside.lstrip("/"))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                with files[inside].open("rb") as f:
                    tar.addfile(info, f)
            tmp_dir = tarfile.TarInfo("tmp")
            tmp_dir.type, tmp_dir.mode = tarfile.DIRTYPE, 0o1777
            tar.addfile(tmp_dir, io.BytesIO())
        changes = [
            f'ENTRYPOINT ["{APP_DIR}/{binary.resolve().name}"]',
            f"ENV LD_LIBRARY_PATH={APP_DIR}",
            f"LABEL {CONTENT_LABEL}={digest}",
        ]
        repository, _, version = tag.rpartition(":")
        client.api.import_image_from_file(str(tar_path), repository=repository or tag,
                                          tag=version or "latest", changes=changes)
    return True
