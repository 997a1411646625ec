"""`kitt campaign run|status|list`: many runs from one campaign file (docs/campaigns.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kitt.hookspecs import hookimpl


@hookimpl
def register_commands(cli):
    cli.add_command(campaign)


@click.group()
def campaign():
    """Campaigns: models x engines, run one after another, resumable."""


@campaign.command(name="run")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--resume", is_flag=True,
              help="Continue a campaign that has state: rerun only pending, failed, "
                   "interrupted and postponed runs.")
@click.option("--restart", is_flag=True,
              help="Start over: set the existing state aside (state-TIMESTAMP.json) and "
                   "run every entry again. Stored results are kept.")
@click.option("--dry-run", is_flag=True, help="Print the plan and exit; starts nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def campaign_run(file: Path, resume: bool, restart: bool, dry_run: bool, as_json: bool):
    """Run the campaign in FILE.

    Exit codes: 0 all runs passed, 1 some run failed or was postponed, 2 bad input,
    130 or 143 stopped by SIGINT or SIGTERM (--resume continues).
    """
    from kitt._campaign.loader import load_campaign
    from kitt._campaign.plan import make_plan
    from kitt._util.extras import require_extra
    from kitt.errors import BadInput

    require_extra("report", "kitt campaign run (each run's report.html)")
    if resume and restart:
        raise BadInput("--resume and --restart exclude each other",
                       hint="--resume continues the campaign, --restart starts it over")
    spec = load_campaign(file)
    plan = make_plan(spec)
    if dry_run:
        _print_plan(spec, plan, as_json)
        return
    if not any(entry.runnable for entry in plan):
        raise BadInput(f"campaign {spec.name!r} has nothing to run: every model/engine pair "
                       "was skipped", hint="see `kitt campaign run --dry-run FILE` for why")
    from kitt._storage.open import open_store

    open_store(spec.store).close()  # a wrong store URL must fail before any engine starts
    code = _run(spec, plan, file, resume=resume, restart=restart)
    from kitt._campaign.state import load_state, state_path

    state = load_state(state_path(spec.name))
    assert state is not None
    if as_json:
        from kitt._cli.output import print_json

        print_json({**state.doc, "exit_code": code})
    else:
        _print_entries(state)
    if code > 128:  # a signal stopped it (128 + N)
        import signal

        click.echo(f"kitt: interrupted by {signal.Signals(code - 128).name}; campaign "
                   f"{spec.name} stopped after the run under way was stored; the finished "
                   f"runs are kept. Continue with: kitt campaign run {file} --resume",
                   err=True)
    sys.exit(code)


def _run(spec, plan, file: Path, *, resume: bool, restart: bool) -> int:
    from contextlib import contextmanager

    from kitt._campaign import state as states
    from kitt._campaign.scheduler import run_campaign
    from kitt._cli.output import warn
    from kitt._cli.progress import TerminalEvents
    from kitt.errors import BadInput

    def say(text: str) -> None:
        click.echo(f"kitt campaign {spec.name} {text}", err=True)

    @contextmanager
    def events(entry):
        with TerminalEvents() as terminal:
            yield terminal

    path = states.state_path(spec.name)
    with states.campaign_lock(spec.name):
        state = states.load_state(path)
        if state is not None and restart:
            aside = path.with_name(f"state-{states.now().replace(':', '')}.json")
            path.replace(aside)
            say(f"previous state set aside as {aside}")
            state = None
        if state is not None and not resume:
            counts = ", ".join(f"{n} {s}" for s, n in sorted(state.counts().items()))
            raise BadInput(f"campaign {spec.name!r} has already run ({counts}; state in "
                           f"{path})",
                           hint=f"pass --resume to rerun only pending and failed runs, or "
                                f"--restart to start over: kitt campaign run {file} --resume")
        if state is None:
            state = states.new_state(spec, plan)
        else:
            states.merge_plan(state, spec, plan)
            for entry_id in states.recover_interrupted(state):
                say(f"{entry_id} was running when the previous process stopped: "
                    f"{state.entry(entry_id)['status']}")
        state.save()
        return run_campaign(spec, plan, state, events=events, say=say, warn=warn)


def _print_plan(spec, plan, as_json: bool) -> None:
    from kitt._cli.output import print_json, print_table

    if as_json:
        print_json({"name": spec.name, "file": str(spec.path), "output": str(spec.output),
                    "entries": [{**e.describe(), "action": "run" if e.runnable else "skip",
                                 "reason": e.skip_reason} for e in plan]})
        return
    print_table(("entry", "model", "format", "quant", "engine", "suite", "action"),
                ((e.id, e.model.reference, e.format, e.quantization or "?",
                  e.engine.label, e.suite, "run" if e.runnable else f"skip: {e.skip_reason}")
                 for e in plan), title=f"campaign {spec.name} ({spec.path})")
    runs = sum(e.runnable for e in plan)
    click.echo(f"{runs} run(s) planned, {len(plan) - runs} pair(s) skipped; "
               f"results under {spec.output}")


def _print_entries(state) -> None:
    from kitt._cli.output import print_table

    doc = state.doc
    print_table(("entry", "status", "attempts", "run", "exit", "finished", "note"),
                ((e["id"] + ("" if e.get("in_plan", True) else " (not in file)"),
                  e["status"], e.get("attempts", 0), e.get("run_id"), e.get("exit_code"),
                  e.get("finished_at"), _first_line(e.get("reason")))
                 for e in state.entries),
                title=f"campaign {doc['name']}: {doc.get('status')} ({doc.get('file')})")
    counts = ", ".join(f"{n} {s}" for s, n in sorted(state.counts().items()))
    click.echo(f"{counts}; state: {state.path}")


def _first_line(text: str | None) -> str:
    return text.splitlines()[0] if text else ""


@campaign.command(name="status")
@click.argument("campaign_ref", metavar="[NAME|FILE]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def campaign_status(campaign_ref: str | None, as_json: bool):
    """Each entry of a campaign: status, attempts, run id (default: the latest campaign)."""
    from kitt._campaign.loader import campaign_name
    from kitt._campaign.state import all_states, load_state, state_path
    from kitt._cli.output import print_json
    from kitt.errors import BadInput

    if campaign_ref is None:
        found = sorted(all_states(), key=lambda s: s.doc.get("updated_at", ""))
        if not found:
            raise BadInput("no campaign has run yet", hint="kitt campaign run FILE")
        state = found[-1]
    else:
        is_file = Path(campaign_ref).is_file() or campaign_ref.endswith((".yaml", ".yml"))
        name = campaign_name(Path(campaign_ref)) if is_file else campaign_ref
        loaded = load_state(state_path(name))
        if loaded is None:
            raise BadInput(f"campaign {name!r} has no state (it has not run)",
                           hint="`kitt campaign list` shows the campaigns that ran")
        state = loaded
    if as_json:
        print_json(state.doc)
    else:
        _print_entries(state)


@campaign.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def campaign_list(as_json: bool):
    """Campaigns that have run (KITT_HOME/campaigns)."""
    from kitt._campaign.state import all_states
    from kitt._cli.output import print_json, print_table

    rows = [{"name": s.doc["name"], "status": s.doc.get("status"), "counts": s.counts(),
             "entries": sum(s.counts().values()), "updated_at": s.doc.get("updated_at"),
             "file": s.doc.get("file"), "state_file": str(s.path)} for s in all_states()]
    if as_json:
        print_json(rows)
        return
    print_table(("campaign", "status", "entries", "counts", "updated", "file"),
                ((r["name"], r["status"], r["entries"],
                  ", ".join(f"{n} {s}" for s, n in sorted(r["counts"].items())),
                  r["updated_at"], r["file"]) for r in rows))
