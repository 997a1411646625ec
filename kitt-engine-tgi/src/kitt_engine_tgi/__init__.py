"""KITT engine plugin for Hugging Face Text Generation Inference: the `tgi` engine."""

from kitt_engine_tgi.engine import Tgi, TgiOptions

__all__ = ["Tgi", "TgiOptions"]
