"""The built-in fingerprint probes, a plugin like any other (`kitt.plugins.DEFAULT_PLUGINS`)."""

from kitt.hookspecs import hookimpl
from kitt.probe import Probe


@hookimpl
def register_fingerprint_probes(register):
    # Each probe module imports only the standard library at module level.
    from kitt._fingerprint.probes import cpu, environment, gpu, memory, osinfo, storage

    register(Probe("gpu", gpu.collect))
    register(Probe("cpu", cpu.collect))
    register(Probe("memory", memory.collect))
    register(Probe("storage", storage.collect))
    register(Probe("os", osinfo.collect))
    register(Probe("environment", environment.collect))
