"""`kitt models tiny`: KITT's own tiny test model."""

from __future__ import annotations

from pathlib import Path

import click

from kitt import command_group
from kitt._cli.options import json_option
from kitt.hookspecs import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    command_group(cli, "models", "Models KITT can make or inspect.").add_command(models_tiny)


@click.command(name="tiny")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--name", default="kitt-tiny", show_default=True)
@json_option
def models_tiny(out_dir: Path, seed: int, name: str, as_json: bool):
    """Write KITT's tiny test model (GGUF + Hugging Face folder, same weights) to OUT_DIR.

    Offline and deterministic: for smoke-testing an engine install without downloads."""
    from kitt._cli.output import print_json
    from kitt._util.extras import require_extra

    require_extra("tiny", "kitt models tiny")
    from kitt._testing.tinymodel import write_tiny_model

    tiny = write_tiny_model(out_dir, seed=seed, name=name)
    doc = {"name": tiny.name, "gguf": str(tiny.gguf_path), "hf_dir": str(tiny.hf_dir),
           "vocab_size": tiny.vocab_size, "context_length": tiny.context_length}
    if as_json:
        print_json(doc)
    else:
        click.echo(f"gguf: {tiny.gguf_path}\nhf:   {tiny.hf_dir}")
