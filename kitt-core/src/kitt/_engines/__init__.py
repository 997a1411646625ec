"""Engine lifecycle: everything between "run this engine on this model" and a healthy
server, and back.

`preflight` checks everything and plans the launch; `launcher` carries the plan out
(`native` process groups, `docker` containers, `health` waits, teardown); `formats`
detects model formats; `images` chooses and gets container images (`rootfs` builds them
from host binaries); `config` reads engine configs and profiles; `server` is the handle
callers get. `streams` and `tokenize` are the wire formats KITT speaks to engines, and
`conformance` checks a live endpoint for them.
"""
