#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard's browser test (test/ops-dashboard-browser.test.ts), when it is
# missing and we are root. Kept apart from ensure-services.sh: running tally never needs a browser.
set -euo pipefail
say() { printf 'ensure-chromium: %s\n' "$*" >&2; }
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then say "no /usr/bin/chromium and not root: apt-get install chromium to run the browser test"; exit 1; fi
say "installing chromium with apt (once)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
say "chromium installed"
