#!/usr/bin/env bash
# Install Debian's headless Chromium for tests/test_book.py (idempotent; needs root or sudo).
# The test drives it over the Chrome DevTools protocol (no chromedriver needed); it starts it as
#   chromium --headless --no-sandbox --disable-gpu ... --remote-debugging-port=0
# Run: bash .ci/install_chromium.sh   (prints the browser's path and version at the end)
set -euo pipefail
PACKAGES=(chromium fonts-dejavu-core)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
    echo "[install_chromium] installed: ${missing[*]}"
else
    echo "[install_chromium] already installed: ${PACKAGES[*]}"
fi
browser="$(command -v chromium)"
echo "[install_chromium] $browser: $("$browser" --headless --no-sandbox --disable-gpu --version 2>/dev/null)"
