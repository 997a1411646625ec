"""KITT engine plugin for vLLM: the `vllm` engine."""

from kitt_engine_vllm.engine import Vllm, VllmOptions

__all__ = ["Vllm", "VllmOptions"]
