#!/usr/bin/env bash
# A headless browser for the web page's end-to-end tests (tests/e2e/test_ui.py): Debian's
# chromium and chromium-driver (WebDriver), the two of one version. Does nothing where both are
# already installed. Needs root (apt).
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" fonts-dejavu-core >/dev/null
fi
