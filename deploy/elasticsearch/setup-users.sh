#!/usr/bin/env bash
# Dedicated users for the log pipeline, so that nothing but an operator uses
# the "elastic" superuser:
#   kibana_system    built-in; Kibana's own connection (password set here)
#   filebeat_writer  may only create documents in the logs-anomaly-* data streams
#   logs_reader      people reading logs in Kibana: read-only on logs-anomaly-*
# Runs in the background of the elasticsearch container at every start
# (compose.yaml); every call is idempotent (PUT/POST overwrite). Passwords come
# from the container's environment, filled from .env.
set -euo pipefail

: "${ELASTIC_PASSWORD:?}" "${KIBANA_SYSTEM_PASSWORD:?}" "${FILEBEAT_WRITER_PASSWORD:?}" "${LOGS_READER_PASSWORD:?}"
ES_URL=${ES_URL:-https://localhost:9200}
CA=${CA:-/usr/share/elasticsearch/config/certs/ca.crt}

es() {
    # es METHOD PATH [JSON]; the body is read from stdin so that no password
    # appears in the process list.
    local method=$1 path=$2
    curl --silent --show-error --fail --cacert "$CA" \
        --user "elastic:${ELASTIC_PASSWORD}" \
        -X "$method" -H 'Content-Type: application/json' \
        "${ES_URL}${path}" --data-binary @- >/dev/null
}

json_string() {
    # A JSON string literal for $1 (passwords may contain quotes or backslashes).
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

for _ in $(seq 1 120); do
    if curl --silent --fail --cacert "$CA" --user "elastic:${ELASTIC_PASSWORD}" \
        "${ES_URL}/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1; then
        break
    fi
    sleep 5
done

printf '{"password": %s}' "$(json_string "$KIBANA_SYSTEM_PASSWORD")" |
    es POST /_security/user/kibana_system/_password

es PUT /_security/role/filebeat_writer <<'JSON'
{
  "cluster": ["monitor", "read_ilm", "read_pipeline"],
  "indices": [
    {
      "names": ["logs-anomaly-*"],
      "privileges": ["create_doc", "auto_configure", "view_index_metadata"]
    }
  ]
}
JSON

es PUT /_security/role/logs_reader <<'JSON'
{
  "indices": [
    {"names": ["logs-anomaly-*"], "privileges": ["read", "view_index_metadata"]}
  ],
  "applications": [
    {
      "application": "kibana-.kibana",
      "privileges": ["feature_discover.read", "feature_dashboard.read", "feature_visualize.read"],
      "resources": ["space:default"]
    }
  ]
}
JSON

printf '{"password": %s, "roles": ["filebeat_writer"], "full_name": "Filebeat (anomaly app logs)"}' \
    "$(json_string "$FILEBEAT_WRITER_PASSWORD")" | es POST /_security/user/filebeat_writer

printf '{"password": %s, "roles": ["logs_reader"], "full_name": "Log reader"}' \
    "$(json_string "$LOGS_READER_PASSWORD")" | es POST /_security/user/logs_reader

echo "setup-users: kibana_system, filebeat_writer and logs_reader are ready" >&2
