"""KITT engine plugin for llama.cpp: `llamacpp` (llama-server) and `llamacpp-python`."""

from kitt_engine_llamacpp.llama_server import LlamaServer, LlamaServerOptions
from kitt_engine_llamacpp.python_server import LlamaCppPython, LlamaCppPythonOptions

__all__ = ["LlamaCppPython", "LlamaCppPythonOptions", "LlamaServer", "LlamaServerOptions"]
