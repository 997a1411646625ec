#!/bin/sh
# The KITT image's entrypoint: `kitt ARGS...` (or `kitt-agent ARGS...` when the first
# argument is kitt-agent), run as the owner of the results folder, so that what KITT writes
# there belongs to the user who mounted it, not to root. Its groups keep the Docker
# socket's, which launching engines as sibling containers needs. A root-owned folder (one
# that dockerd created because it did not exist) keeps root: `mkdir` it first.
set -eu
program=kitt
if [ "${1:-}" = kitt-agent ] || [ "${1:-}" = kitt ]; then
  program=$1
  shift
fi
home=${KITT_HOME:-/app/kitt-results}
mkdir -p "$home"
uid=$(stat -c %u "$home")
if [ "$(id -u)" = 0 ] && [ "$uid" != 0 ]; then
  gid=$(stat -c %g "$home")
  groups=$gid
  socket=${DOCKER_HOST:-unix:///var/run/docker.sock}
  socket=${socket#unix://}
  if [ -S "$socket" ]; then
    groups="$groups,$(stat -c %g "$socket")"
  fi
  # HOME for the caches of libraries (matplotlib, Hugging Face): the user has none here.
  export HOME=/tmp
  exec setpriv --reuid "$uid" --regid "$gid" --groups "$groups" --inh-caps=-all \
    --bounding-set=-all "$program" "$@"
fi
exec "$program" "$@"
