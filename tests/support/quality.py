"""Quality test helpers: real engine servers on KITT's tiny model, started and torn down by
KITT's own preflight and launcher (the fixtures are in quality/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs

from support import free_port
from support.engines import launched

DATASETS = Path(__file__).parent.parent / "fixtures" / "datasets"
MODEL_NAME = "kitt-tiny"


@attrs.frozen
class Server:
    engine: str
    base_url: str
    model: str
    gguf_path: Path
    hf_dir: Path
    log: Path

    def target(self, **changes):
        from kitt import Target
        from kitt.plugins import engines

        fields = {"base_url": self.base_url, "model": self.model, "engine": self.engine,
                  "model_path": self.gguf_path,
                  "tokenize": engines()[self.engine].tokenize_api, **changes}
        return Target(**fields)


def launch_server(engine: str, model_path: Path, model, tmp_path_factory, *,
                  options: dict | None = None, ready_s: float = 300) -> Iterator[Server]:
    """A real engine through KITT's own preflight and launcher (health, teardown)."""
    log_dir = tmp_path_factory.mktemp(engine)
    with launched(engine, str(model_path), port=free_port(), served_name=MODEL_NAME,
                  options=options or {}, log_dir=log_dir, ready_timeout_s=ready_s) as running:
        yield Server(engine, running.base_url, running.served_name, model.gguf_path,
                     model.hf_dir, running.log_path)


def make_context(server: Server, out_dir: Path, progress=None, **target_changes):
    from kitt.benchmark import BenchmarkContext
    from kitt.records import Fingerprint

    kwargs = {"progress": progress} if progress else {}
    return BenchmarkContext(target=server.target(**target_changes),
                            hardware=Fingerprint("test"), output_dir=out_dir, **kwargs)


def params(benchmark, **values):
    from kitt._util.converter import structure

    return structure(values, benchmark.Params)
