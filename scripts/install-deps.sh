#!/usr/bin/env bash
# Installs the Debian packages Vouch needs to build (and, later, to run the
# desktop app and its screenshot tests). Idempotent: does nothing when they
# are already present. Needs root or sudo when something is missing.
set -euo pipefail

packages=(build-essential pkg-config libssl-dev libfontconfig-dev)
# vouch-app at run time (winit loads the X11 libraries when it starts) and a
# font for its text.
packages+=(libx11-6 libx11-xcb1 libxcursor1 libxi6 libxrandr2 libxkbcommon-x11-0 fonts-dejavu-core)
# scripts/app-screenshots and the Xvfb test: a virtual X server (xvfb-run needs
# xauth, only a Recommends of xvfb), xwd/xwininfo/xdpyinfo, convert.
packages+=(xvfb xauth x11-apps x11-utils imagemagick)
# The verifier web page is tested in headless Chromium.
packages+=(chromium)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "installing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
