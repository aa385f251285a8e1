#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks use as real peers, when they are missing.
# Each package is named with the command that shows it is present; only the missing ones are
# installed. Daemons are installed without being started (policy-rc.d): tests start their own
# instances on loopback and stop them by PID.
#
# Two environment variables exist for the script's own test (test/integration/ensure-system-packages.test.ts),
# which runs it against stub commands without touching the machine:
#   DNSLB_POLICY_RC_D  the policy-rc.d path (default /usr/sbin/policy-rc.d)
#   DNSLB_SBIN_DIRS    directories searched besides PATH, which lacks /usr/sbin for most users
#                      (default "/usr/sbin /usr/bin"; empty = PATH only)
#   DNSLB_LIB_DIRS     directories a "lib/…" entry is looked for under (default: /usr/lib/<triplet> and /usr/lib)
set -euo pipefail

# command-or-file  package ("lib/PATH": a file under a library folder, for packages without a command)
WANTED=(
  "dig bind9-dnsutils"
  "kdig knot-dnsutils"
  "named-checkzone bind9-utils"
  "knotd knot"
  "nsd nsd"
  "named bind9"
  "dnsperf dnsperf"
  "sipp sip-tester"
  "kamailio kamailio"
  # Kamailio's TLS module: npm run bench:sip (the TLS row) only
  "lib/kamailio/modules/tls.so kamailio-tls-modules"
  "etcd etcd-server"
  # etcdctl: the distributed-mode test sets up etcd users, roles and auth with it
  "etcdctl etcd-client"
  "openssl openssl"
  "socat socat"
  "taskset util-linux"
  "ip iproute2"
  "iptables iptables"
  "chromium chromium"
  "haproxy haproxy"
  # hyperfine: npm run bench:startup only
  "hyperfine hyperfine"
  "zsh zsh"
)

sbin_dirs="${DNSLB_SBIN_DIRS-/usr/sbin /usr/bin}"
lib_dirs="${DNSLB_LIB_DIRS-$(echo /usr/lib/*-linux-gnu*) /usr/lib}"
have() {
  local dir
  if [[ "$1" == lib/* ]]; then
    for dir in $lib_dirs; do
      [ -e "$dir/${1#lib/}" ] && return 0
    done
    return 1
  fi
  command -v "$1" >/dev/null 2>&1 && return 0
  for dir in $sbin_dirs; do
    [ -x "$dir/$1" ] && return 0
  done
  return 1
}

missing=()
for entry in "${WANTED[@]}"; do
  read -r cmd pkg <<<"$entry"
  have "$cmd" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "ensure-system-packages: all present"
  exit 0
fi

echo "ensure-system-packages: installing missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-system-packages: cannot install as $(id -un); run as root or install: apt-get install ${missing[*]}" >&2
  exit 1
fi

# Keep package scripts from starting the daemons system-wide (exit 101 = action forbidden).
# A policy-rc.d that was there before (common in Debian container images) is left as it is.
policy="${DNSLB_POLICY_RC_D:-/usr/sbin/policy-rc.d}"
restore_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && restore_policy=yes
fi
# An `if`, not `[ … ] && rm`: under set -e a false test as the trap's last command would make the
# whole script exit 1 after a successful install (the first `npm test` on such a machine failed so).
cleanup() {
  if [ -n "$restore_policy" ]; then rm -f "$policy"; fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
log="${TMPDIR:-/tmp}/dnslb-apt.log"
if ! apt-get install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
  apt-get update >>"$log" 2>&1 || true
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    echo "ensure-system-packages: apt-get install failed for: ${missing[*]} (log: $log)" >&2
    tail -20 "$log" >&2
    exit 1
  fi
fi

# Some packages start their daemon anyway (no systemd here, init scripts may ignore policy-rc.d);
# stop any system-wide instance so that it does not hold ports the tests want.
for daemon in named knotd nsd kamailio etcd haproxy; do
  pkill -x "$daemon" 2>/dev/null || true
done
echo "ensure-system-packages: installed ${missing[*]}"
