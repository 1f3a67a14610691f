#!/usr/bin/env bash
# The system tools the tests need, installed the one way `make test` and .ci/run share:
#   promtool  (Debian `prometheus`)              alert rules, config checks, live scrape test
#   amtool    (Debian `prometheus-alertmanager`) Alertmanager config and routing tests
#   chromium + chromedriver (`chromium`, `chromium-driver`) browser-tested dashboards
# Nothing to do when all are on PATH. Otherwise apt-get installs them when it can (root, or
# password-less sudo); if it cannot, this stops at once with the exact command to run.
set -euo pipefail

packages=(prometheus prometheus-alertmanager chromium chromium-driver)
missing=0
for tool in promtool amtool chromium chromedriver; do
    command -v "$tool" >/dev/null 2>&1 || missing=1
done
[ "$missing" = 0 ] && exit 0

command_line="apt-get install -y --no-install-recommends ${packages[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-tools: promtool, amtool, chromium and chromedriver are needed and this" \
        "machine has no apt-get. On Debian/Ubuntu run: sudo $command_line" \
        "(elsewhere: the Prometheus, Alertmanager and Chromium/ChromeDriver releases)." >&2
    exit 1
fi
if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install-tools: promtool, amtool, chromium and chromedriver are needed; run:" >&2
    echo "    sudo apt-get update && sudo $command_line" >&2
    exit 1
fi

# Package services must not start (policy-rc.d exit 101): the tests start their own servers.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    "${as_root[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy"
    trap '"${as_root[@]}" rm -f "$policy"' EXIT
fi
# Another apt run (e.g. a parallel job) holds the lock for a while: wait, do not fail.
apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
"${apt[@]}" update -qq
"${apt[@]}" install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
