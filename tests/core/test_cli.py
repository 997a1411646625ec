"""CLI conventions: version, help, exit codes, errors on stderr."""

from __future__ import annotations

import json
import sys

from support import run_kitt

import kitt


def test_version_matches_the_distribution():
    result = run_kitt("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"kitt, version {kitt.__version__}"


def test_unknown_command_is_a_usage_error_with_exit_code_2():
    result = run_kitt("no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr
    assert result.stdout == ""


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "sys.argv = ['kitt', '--help']\n"
        "from kitt._cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ['docker', 'lm_eval', 'numpy', 'aiohttp', 'torch', 'rich', 'psycopg',\n"
        "         'gguf', 'safetensors', 'transformers']\n"
        "print('LOADED', [m for m in heavy if m in sys.modules])\n"
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    loaded = next(line for line in done.stdout.splitlines() if line.startswith("LOADED"))
    assert loaded == "LOADED []", done.stdout


def test_fingerprint_json_is_a_complete_document():
    result = run_kitt("fingerprint", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) >= {"fingerprint", "gpu", "cpu", "memory", "storage", "os", "environment"}
    assert doc["fingerprint"]
