#!/usr/bin/env bash
# Installs Prometheus' promtool (Debian package `prometheus`) for the metrics and alert-rule tests
# (test/obs-*.test.ts), when it is missing and we are root. Kept apart from ensure-services.sh: running tally
# never needs it. The package also ships the Prometheus server; nothing here starts it.
set -euo pipefail
say() { printf 'ensure-promtool: %s\n' "$*" >&2; }
if command -v promtool >/dev/null; then exit 0; fi
if [ "$(id -u)" != 0 ]; then say "no promtool and not root: apt-get install prometheus (or put promtool on PATH) to run the metrics and rules tests"; exit 1; fi
# Several test files call this at once: one installs, the others wait and find it installed.
exec 9>/tmp/tally-ensure-promtool.lock
flock 9
if command -v promtool >/dev/null; then exit 0; fi
say "installing promtool with apt (package prometheus, once)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The package's maintainer scripts would start a Prometheus server: a temporary policy-rc.d (Debian's way to
# say "start no services") keeps them from it, unless the machine already has a policy of its own.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
# --no-install-recommends: promtool needs nothing of the exporters and web assets the package recommends.
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
say "promtool installed: $(promtool --version 2>&1 | head -n 1)"
