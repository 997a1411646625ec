"""`kitt test new NAME`: scaffold a custom evaluation."""

from __future__ import annotations

from pathlib import Path

import click

import kitt

SCAFFOLD = """\
# A KITT custom evaluation (schema: docs/custom-evals.md). Run it with any suite that
# lists `{name}` under benchmarks, or check it with `kitt test list`.
name: {name}
description: "Capital cities, answered in a few words"
version: "1"
dataset:
  path: {name}.jsonl            # relative to this file: .jsonl, .json or .parquet
  fewshot_path: {name}-fewshot.jsonl
prompt: "Q: What is the capital of {{{{country}}}}?\\nA:"
target: "{{{{capital}}}}"
fewshot:
  count: 1
  separator: "\\n\\n"
generation:
  max_tokens: 16
  stop: ["\\n"]
answer:
  regex: "([A-Z][a-z]+(?: [A-Z][a-z]+)*)"
  select: first
metrics: [exact_match]
exact_match:
  ignore_case: true
"""

SAMPLE_ROWS = [
    {"country": "France", "capital": "Paris"},
    {"country": "Japan", "capital": "Tokyo"},
    {"country": "Kenya", "capital": "Nairobi"},
]
FEWSHOT_ROWS = [{"country": "Italy", "capital": "Rome"}]


def add_commands(cli: click.Group) -> None:
    """`kitt test new`, added to the `kitt test` group (kitt-core's `kitt test list` and
    `show` list every benchmark, custom evaluations included)."""
    help = "Benchmarks of the installed plugins: list them, show what each measures."
    kitt.command_group(cli, "test", help).add_command(new_command)


@click.command(name="new")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write it (default: $KITT_HOME/evals, i.e. ~/.kitt/evals).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def new_command(name: str, directory: Path | None, force: bool):
    """Scaffold a custom evaluation NAME.yaml with a small sample dataset."""
    import json

    import kitt
    from kitt_bench_quality.custom import NAME, evals_dir, load

    if not NAME.match(name):
        raise kitt.BadInput(f"invalid evaluation name {name!r}",
                       hint="use lower-case letters, digits, '_', '-' and '.'")
    folder = directory or evals_dir()
    folder.mkdir(parents=True, exist_ok=True)
    yaml_path = folder / f"{name}.yaml"
    files = {yaml_path: SCAFFOLD.format(name=name),
             folder / f"{name}.jsonl": "".join(json.dumps(r) + "\n" for r in SAMPLE_ROWS),
             folder / f"{name}-fewshot.jsonl": "".join(json.dumps(r) + "\n"
                                                      for r in FEWSHOT_ROWS)}
    existing = [str(p) for p in files if p.exists()]
    if existing and not force:
        raise kitt.BadInput(f"{', '.join(existing)} already exist(s)",
                       hint="use --force, or another name")
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    load(yaml_path)  # the scaffold must validate
    click.echo(f"wrote {yaml_path} (and its sample data); edit it, then `kitt test list`")
