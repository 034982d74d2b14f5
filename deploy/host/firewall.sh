#!/usr/bin/env bash
# Host firewall (nftables): inbound traffic only on 80 and 443 (Traefik) and
# on the custom SSH port; everything else is dropped. Outbound is open.
#
#   sudo SSH_PORT=2222 deploy/host/firewall.sh           apply now
#   SSH_PORT=2222 deploy/host/firewall.sh --print        show the rules, change nothing
#   sudo SSH_PORT=2222 deploy/host/firewall.sh --check   validate with nft -c, change nothing
#
# To keep the rules across reboots, apply then run:
#   sudo nft list table inet anomaly_host > /etc/nftables.d/anomaly_host.nft
# and include that file from /etc/nftables.conf (docs/deploy.md).
#
# Docker: published container ports are forwarded by Docker's own rules
# before they reach this input chain, so a port published in compose.yaml
# would bypass it. That is why only Traefik publishes ports (80, 443). This
# script manages its own table and never flushes the whole ruleset, which
# would delete Docker's rules and cut the containers off.
#
# Before applying over SSH: open a second session on the new port and keep
# the first one until you have logged in through it (ssh-hardening.md).
set -euo pipefail

SSH_PORT=${SSH_PORT:-}
TABLE=anomaly_host
mode=${1:-apply}

if ! [[ $SSH_PORT =~ ^[0-9]+$ ]] || ((SSH_PORT < 1 || SSH_PORT > 65535)); then
    echo "firewall.sh: set SSH_PORT to the custom SSH port (1-65535)" >&2
    exit 2
fi
if ((SSH_PORT == 22)); then
    echo "firewall.sh: SSH_PORT=22 is the default port; pick another one (ssh-hardening.md)" >&2
    exit 2
fi
if ((SSH_PORT == 80 || SSH_PORT == 443)); then
    echo "firewall.sh: SSH_PORT must differ from 80 and 443" >&2
    exit 2
fi

ruleset() {
    cat <<EOF
table inet $TABLE
delete table inet $TABLE
table inet $TABLE {
    chain input {
        type filter hook input priority filter; policy drop;

        iif "lo" accept
        ct state established,related accept
        ct state invalid drop

        # Path MTU discovery, neighbour discovery and ping keep working.
        meta l4proto icmp icmp type { echo-request, destination-unreachable, time-exceeded, parameter-problem } limit rate 10/second accept
        meta l4proto ipv6-icmp icmpv6 type { echo-request, destination-unreachable, packet-too-big, time-exceeded, parameter-problem, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept

        # Traefik: HTTP (redirected to HTTPS) and HTTPS.
        tcp dport { 80, 443 } accept
        # HTTP/3 if ever enabled on Traefik.
        udp dport 443 accept

        # SSH on its custom port, with a brake on password-guessing bursts.
        tcp dport $SSH_PORT ct state new limit rate 10/minute burst 20 packets accept
    }
}
EOF
}

case $mode in
    --print)
        ruleset
        ;;
    --check)
        ruleset | nft -c -f -
        echo "firewall.sh: ruleset is valid (nothing applied)"
        ;;
    apply)
        # The first two lines of the ruleset create then delete the table,
        # so applying twice replaces the rules instead of duplicating them;
        # nft -f applies the whole file atomically or not at all.
        ruleset | nft -f -
        echo "firewall.sh: allowing tcp 80, 443, $SSH_PORT; everything else inbound is dropped"
        ;;
    *)
        echo "usage: SSH_PORT=NNNN $0 [--print|--check]" >&2
        exit 2
        ;;
esac
