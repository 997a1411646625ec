"""The KITT image's build context, as `kitt web dist build` packs it and the server serves
it (`GET /api/v1/agent/image`): the root Dockerfile and what it copies (the distributions'
sources, docker/), and optionally a wheelhouse for offline builds. The archive is
reproducible (sorted entries, fixed owner, times and modes), so one tree gives one
SHA-256, which agents check before `kitt-agent build` builds from it."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import kitt

NAME = re.compile(r"kitt-image-[A-Za-z0-9.+_-]+\.tar\.gz")
_SKIP = re.compile(r"(^|/)(__pycache__|\.pytest_cache|[^/]+\.egg-info)(/|$)|\.pyc$")


def _members(root: Path, wheelhouse: Path | None) -> Iterator[tuple[str, Path]]:
    for name in ("Dockerfile", ".dockerignore"):
        yield name, root / name
    for folder in sorted([*root.glob("kitt-*/"), root / "docker"]):
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(root).as_posix()
            if path.is_file() and not _SKIP.search(relative):
                yield relative, path
    if wheelhouse is not None:
        for path in sorted(wheelhouse.glob("*.whl")):
            yield f"wheelhouse/{path.name}", path


def pack(root: Path, out_dir: Path, wheelhouse: Path | None = None) -> Path:
    """Write `kitt-image-VERSION.tar.gz` into `out_dir` (replacing older ones)."""
    missing = [n for n in ("Dockerfile", "docker/entrypoint.sh") if not (root / n).is_file()]
    if missing:
        raise kitt.BadInput(f"{root} has no {missing[0]}: not a KITT checkout",
                            hint="give --from DIR, a clone of the KITT repository")
    buffer = io.BytesIO()
    # mtime=0 in the gzip header too: the same tree gives the same bytes.
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in _members(root, wheelhouse):
            info = tarfile.TarInfo(name)
            data = path.read_bytes()
            info.size, info.mtime, info.uid, info.gid = len(data), 0, 0, 0
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            tar.addfile(info, io.BytesIO(data))
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.iterdir():
        if NAME.fullmatch(old.name):
            old.unlink()
    target = out_dir / f"kitt-image-{kitt.__version__}.tar.gz"
    target.write_bytes(buffer.getvalue())
    return target


def find(folder: Path | None) -> dict | None:
    """The context in the dist folder, with its SHA-256; None when there is none."""
    if folder is None or not folder.is_dir():
        return None
    for path in sorted(folder.iterdir()):
        if NAME.fullmatch(path.name):
            data = path.read_bytes()
            return {"name": path.name, "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                    "kitt_version": path.name.removeprefix("kitt-image-")
                    .removesuffix(".tar.gz")}
    return None
