"""KITT engine plugin for Ollama: the `ollama` engine."""

from kitt_engine_ollama.engine import Ollama, OllamaOptions

__all__ = ["Ollama", "OllamaOptions"]
