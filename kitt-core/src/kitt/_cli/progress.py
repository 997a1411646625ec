"""How long work shows its progress on stderr: a live bar on a terminal, timestamped lines
when stderr is a file or a pipe (CI logs)."""

from __future__ import annotations

import sys
import time

from kitt.benchmark import Progress
from kitt.records import BenchmarkResult


class TerminalEvents:
    """Progress on stderr: a live bar on a terminal, plain timestamped lines otherwise."""

    def __init__(self):
        self.live = sys.stderr.isatty()
        self._progress = None
        self._task = None
        self._start = time.monotonic()

    def __enter__(self):
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      TextColumn("ETA"), TimeRemainingColumn(),
                                      console=Console(stderr=True), transient=False)
            self._progress.start()
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()

    def _line(self, text: str) -> None:
        stamp = f"{time.monotonic() - self._start:7.1f}s"
        if self._progress is not None:
            self._progress.console.print(f"[dim]{stamp}[/dim] {text}", highlight=False)
        else:
            print(f"kitt {stamp} {text}", file=sys.stderr, flush=True)

    def stage(self, text: str) -> None:
        self._line(text)

    def benchmark_started(self, name: str, run_number: int, runs: int) -> Progress:
        label = f"{name} (run {run_number}/{runs})" if runs > 1 else name
        self._line(f"running {label}")
        if self._progress is not None:
            self._task = self._progress.add_task(label, total=None)
            task = self._task

            def progress(done: int, total: int | None) -> None:
                self._progress.update(task, completed=done, total=total)

            return progress
        last = [0.0]

        def progress_lines(done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - last[0] >= 5 or (total is not None and done >= total):
                last[0] = now
                self._line(f"  {label}: {done}/{total if total is not None else '?'}")

        return progress_lines

    def benchmark_finished(self, result: BenchmarkResult) -> None:
        verdict = "passed" if result.passed else "FAILED"
        detail = f": {result.error}" if result.error else ""
        self._line(f"{result.name} run {result.run_number} {verdict}{detail}")
        for warning in result.warnings:
            self._line(f"  warning: {warning}")
