#!/usr/bin/env bash
# Headless Chromium for the console's browser tests (tests/ledger/reconcile/test_console_browser.py):
# installs Debian's chromium, chromium-driver and a Chinese font (fonts-wqy-zenhei) when /usr/bin/chromium or /usr/bin/chromedriver
# is missing (as root; otherwise it says what to install). Playwright's own browser download is
# not used: the tests drive Debian's chromium through Selenium and its chromedriver.
set -euo pipefail
# a Chinese font too, so that the screenshots show the console's labels
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && [ -n "$(fc-list :lang=zh 2>/dev/null)" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium or chromedriver missing: install Debian's chromium and chromium-driver" >&2
  exit 1
fi
echo "Chromium not found: installing Debian's chromium and chromium-driver packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei >/dev/null
