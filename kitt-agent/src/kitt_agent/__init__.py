"""kitt-agent: runs KITT jobs from a KITT server on this host (docs/agents.md)."""

__version__ = "0.1.0"
