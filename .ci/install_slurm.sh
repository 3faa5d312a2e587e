#!/usr/bin/env bash
# Install Debian's Slurm + munge packages for tests/test_slurm.py (idempotent; needs root or sudo).
# The test starts its own single-node cluster under a temporary prefix: no service is enabled here.
set -euo pipefail
PACKAGES=(slurmctld slurmd slurm-client munge)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "[install_slurm] already installed: ${PACKAGES[*]}"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# policy-rc.d exit 101: postinst must not start daemons (no systemd in containers); a policy-rc.d
# that already exists is left as it is, one we add is removed again on exit
if [ ! -e /usr/sbin/policy-rc.d ]; then
    $SUDO sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "[install_slurm] installed: ${missing[*]}"
