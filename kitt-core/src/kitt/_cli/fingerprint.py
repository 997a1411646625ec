"""`kitt fingerprint`: this machine, as every run records it (docs/fingerprint.md)."""

from __future__ import annotations

import click

from kitt._cli.options import json_option
from kitt._cli.output import print_fields, print_json
from kitt.hookspecs import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(fingerprint)


@click.command()
@click.option("--verbose", "-v", is_flag=True, help="Every field, not just the summary.")
@json_option
def fingerprint(verbose: bool, as_json: bool):
    """Describe this machine's hardware and environment."""
    from kitt._fingerprint import take_fingerprint
    from kitt._util.converter import unstructure

    fp = take_fingerprint()
    if as_json:
        print_json(unstructure(fp))
        return
    gpus = ", ".join(
        f"{g.name} ({g.memory_mib} MiB)" if g.memory_mib else g.name for g in fp.gpu.gpus
    )
    pairs = [
        ("fingerprint", fp.fingerprint),
        ("gpu", gpus or "no GPU"),
        ("cpu", f"{fp.cpu.brand} ({fp.cpu.architecture}, {fp.cpu.cores} cores, "
                f"{fp.cpu.threads} threads)"),
        ("memory", f"{fp.memory.total_mib} MiB {fp.memory.type or ''}".strip()),
        ("storage", " ".join(filter(None, (fp.storage.kind, fp.storage.model))) or "unknown"),
        ("os", " ".join(filter(None, (fp.os.distribution, fp.os.version)))),
        ("kernel", fp.os.kernel),
        ("environment", fp.environment),
    ]
    if verbose:
        pairs += [
            ("gpu driver", fp.gpu.driver_version),
            ("cuda", fp.gpu.cuda_version),
            ("unified memory", fp.gpu.unified_memory),
            ("gpu source", fp.gpu.source),
            *((f"gpu {i} compute capability", g.compute_capability)
              for i, g in enumerate(fp.gpu.gpus)),
            ("storage device", fp.storage.device),
            *((f"{probe}.{key}", value) for probe, fields in fp.extra.items()
              for key, value in fields.items()),
        ]
    print_fields(pairs)
    for warning in fp.warnings:
        click.echo(f"kitt: warning: {warning}", err=True)
