"""Errors users see. Each names the problem and the fix; the CLI maps them to exit codes."""

from __future__ import annotations

# Documented exit codes (docs/cli.md).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ENGINE = 3


class KittError(Exception):
    """An error with a user-facing message, an optional hint and an exit code."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message


class BadInput(KittError):
    """Wrong model format, missing file, malformed YAML, unknown engine, bad option..."""

    exit_code = EXIT_BAD_INPUT


class EngineFailed(KittError):
    """The engine failed to start, never became healthy, or died."""

    exit_code = EXIT_ENGINE
