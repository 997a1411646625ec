"""Base images for the deployment tests, made here because no registry is reachable: a
minimal Debian bookworm from `debootstrap`, `docker import`ed, holding Python (for the KITT
image, as `python:3.12-slim` would) and Debian's own PostgreSQL, Prometheus and InfluxDB,
from which tests/support/service-images/*/ build stand-ins for the official images of the stack's
services (same entrypoints and variables). docs/deployment.md names the images a real
user pulls instead.

The root filesystem is made once per machine and kept (KITT_TEST_IMAGE_CACHE, default
/var/cache/kitt-test): a second session imports the same tarball, and a present image with
the same content label is not imported again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from support import require

ROOT = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
MIRROR = os.environ.get("KITT_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = ("python3", "python3-venv", "ca-certificates", "postgresql", "prometheus",
            "influxdb", "busybox", "curl")
BASE_IMAGE = "kitt-test/debian:" + SUITE
KITT_IMAGE = "kitt-test/kitt:latest"
LABEL = "io.kitt.test.rootfs"


def cache_dir() -> Path:
    return Path(os.environ.get("KITT_TEST_IMAGE_CACHE", "/var/cache/kitt-test"))


def _recipe() -> str:
    return hashlib.sha256(f"{SUITE} {MIRROR} {' '.join(PACKAGES)}".encode()).hexdigest()[:16]


def debian_base(client) -> str:
    """The local Debian image (made on first use: debootstrap, ~2 min); its tag."""
    from docker.errors import ImageNotFound

    recipe = _recipe()
    try:
        if client.images.get(BASE_IMAGE).labels.get(LABEL) == recipe:
            return BASE_IMAGE
    except ImageNotFound:
        pass
    tarball = cache_dir() / f"debian-{SUITE}-{recipe}.tar"
    if not tarball.exists():
        require("debootstrap", shutil.which("debootstrap") is not None and os.geteuid() == 0,
                "debootstrap (Debian package, run as root) makes the base images")
        rootfs = cache_dir() / f"rootfs-{recipe}"
        shutil.rmtree(rootfs, ignore_errors=True)
        rootfs.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
             str(rootfs), MIRROR], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        # apt's downloaded packages are of no use in an image.
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.rename(tarball)
        shutil.rmtree(rootfs)
    subprocess.run(["docker", "import", "--change", f"LABEL {LABEL}={recipe}",
                    "--change", 'CMD ["/bin/bash"]', str(tarball), BASE_IMAGE],
                   check=True, capture_output=True)
    return BASE_IMAGE


def wheelhouse() -> Path:
    """The wheelhouse `nox -s images` made (the KITT image's dependencies, offline)."""
    found = ROOT / "wheelhouse"
    require("wheelhouse", any(found.glob("*.whl")),
            "no wheelhouse/ in the tree: run `nox -s images`, which makes it")
    return found


def build_kitt_image(client) -> str:
    """`docker build -t kitt .` of this tree on the local Debian base (its Python is this
    machine's minor version: the wheelhouse's binary wheels must fit it)."""
    base = debian_base(client)
    wheelhouse()
    python = subprocess.run(["docker", "run", "--rm", base, "python3", "-c",
                             "import sys; print('%d.%d' % sys.version_info[:2])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    here = "{}.{}".format(*sys.version_info[:2])
    assert python == here, (f"the base image has Python {python}, the wheelhouse was made "
                            f"for {here}: run the image tests with Python {python}")
    done = subprocess.run(["docker", "build", "--build-arg", f"BASE_IMAGE={base}", "-t",
                           KITT_IMAGE, "."], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return KITT_IMAGE


SERVICE_IMAGES = ("postgres", "prometheus", "influxdb")


def service_image(client, service: str) -> str:
    """The stand-in for the official image of `service`, built on the local base."""
    base = debian_base(client)
    tag = f"kitt-test/{service}:local"
    done = subprocess.run(["docker", "build", "--build-arg", f"BASE={base}", "-t", tag,
                           str(Path(__file__).parent / "service-images" / service)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return tag
