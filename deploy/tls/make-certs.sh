#!/usr/bin/env bash
# Generate the private CA and the certificates the stack uses internally:
#
#   certs/ca/ca.crt, ca.key                    the CA; no container sees this folder
#   certs/elasticsearch/elasticsearch.{crt,key} server cert: DNS elasticsearch, localhost
#   certs/kibana/kibana.{crt,key}              client cert Kibana presents to Elasticsearch
#   certs/filebeat/filebeat.{crt,key}          client cert Filebeat presents to Elasticsearch
#   certs/local/local.{crt,key}                Traefik's fallback certificate for the public
#                                              names (APP_DOMAIN, GRAFANA_DOMAIN, KIBANA_DOMAIN)
#                                              when Let's Encrypt cannot issue one, e.g. locally
# Each leaf folder also gets a copy of ca.crt: a container mounts its own
# folder only, so no container can read another's key or the CA key.
#
# Usage: sudo deploy/tls/make-certs.sh [OUTPUT_DIR]   (default: deploy/tls/certs)
#   Domains are read from the environment or from .env next to compose.yaml.
#   Existing files are kept; pass FORCE=1 to regenerate everything.
#   DAYS (default 825) sets the validity of the leaf certificates, CA_BITS
#   (default 4096) the size of the CA's RSA key.
#
# The Elastic images run as uid 1000, gid 0. Run as root, the script gives
# the files to 1000:0 with keys readable by that user only (0640); run as
# another user it cannot, and leaves keys world-readable (0644) with a warning.
set -euo pipefail
umask 077

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/certs}
days=${DAYS:-825}
env_file=${ENV_FILE:-$here/../../.env}

from_env_file() {
    # The value of $1 in the .env file, if there is one (no shell evaluation).
    [ -f "$env_file" ] || return 0
    sed -n "s/^$1=//p" "$env_file" | tail -n 1 | sed -e "s/^['\"]//" -e "s/['\"]\$//"
}

APP_DOMAIN=${APP_DOMAIN:-$(from_env_file APP_DOMAIN)}
GRAFANA_DOMAIN=${GRAFANA_DOMAIN:-$(from_env_file GRAFANA_DOMAIN)}
KIBANA_DOMAIN=${KIBANA_DOMAIN:-$(from_env_file KIBANA_DOMAIN)}
APP_DOMAIN=${APP_DOMAIN:-anomaly.localhost}
GRAFANA_DOMAIN=${GRAFANA_DOMAIN:-grafana.localhost}
KIBANA_DOMAIN=${KIBANA_DOMAIN:-kibana.localhost}

if [ "${FORCE:-0}" = 1 ]; then
    rm -rf "$out"
fi
mkdir -p "$out"/{ca,elasticsearch,kibana,filebeat,local}

if [ ! -f "$out/ca/ca.crt" ]; then
    openssl req -x509 -new -newkey "rsa:${CA_BITS:-4096}" -nodes -sha256 -days 3650 \
        -subj "/CN=anomaly internal CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$out/ca/ca.key" -out "$out/ca/ca.crt" 2>/dev/null
    echo "created $out/ca/ca.crt"
fi

issue() {
    # issue NAME COMMON_NAME EXTENDED_KEY_USAGE [SAN...]
    local name=$1 cn=$2 eku=$3
    shift 3
    local dir="$out/$name"
    if [ -f "$dir/$name.crt" ]; then
        echo "kept $dir/$name.crt"
        return
    fi
    local ext
    ext=$(mktemp)
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$eku"
        if [ "$#" -gt 0 ]; then
            local sans="" san
            for san in "$@"; do
                if [[ $san =~ ^[0-9.]+$ ]]; then sans+="IP:$san,"; else sans+="DNS:$san,"; fi
            done
            echo "subjectAltName=${sans%,}"
        fi
    } >"$ext"
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$cn" \
        -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
    openssl x509 -req -sha256 -days "$days" -in "$dir/$name.csr" \
        -CA "$out/ca/ca.crt" -CAkey "$out/ca/ca.key" -CAcreateserial \
        -extfile "$ext" -out "$dir/$name.crt" 2>/dev/null
    rm -f "$dir/$name.csr" "$ext"
    cp "$out/ca/ca.crt" "$dir/ca.crt"
    echo "created $dir/$name.crt"
}

issue elasticsearch elasticsearch serverAuth,clientAuth elasticsearch localhost 127.0.0.1
issue kibana kibana clientAuth
issue filebeat filebeat clientAuth
issue local "$APP_DOMAIN" serverAuth "$APP_DOMAIN" "$GRAFANA_DOMAIN" "$KIBANA_DOMAIN"

rm -f "$out/ca/ca.srl"
find "$out" -type d -exec chmod 0750 {} +
find "$out" -name '*.crt' -exec chmod 0644 {} +
if [ "$(id -u)" = 0 ]; then
    chown -R 1000:0 "$out"
    chown -R 0:0 "$out/ca"
    find "$out" -name '*.key' -exec chmod 0640 {} +
else
    find "$out" -type d -exec chmod 0755 {} +
    find "$out" -name '*.key' -exec chmod 0644 {} +
    echo "warning: not root, so the keys are world-readable; rerun with sudo on a server" >&2
fi
# The CA key is needed again only to issue more certificates: keep a copy
# somewhere safe and delete it from the server.
chmod 0600 "$out/ca/ca.key"
