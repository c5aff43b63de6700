#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the HTML preview test, unless it is there.
# The test itself skips (and says so) when no browser is found.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
    echo "browser.sh: cannot install chromium here (needs root and apt-get); the preview test will skip"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null
/usr/bin/chromium --version
