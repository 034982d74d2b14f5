#!/bin/sh
# Render the Alertmanager config template from the environment, then start
# Alertmanager with it (extra arguments are passed on):
#   render-config.sh [TEMPLATE] [OUTPUT] -- [alertmanager args...]
# Defaults: /etc/alertmanager/alertmanager.yml -> /tmp/alertmanager.yml.
# With RENDER_ONLY=1 it only writes the output (used by the tests).
#
# Each ${NAME} is replaced by the variable's value with single quotes doubled,
# which is how a value sits safely inside the template's '...' YAML strings.
# A variable that is unset or empty stops everything: better no Alertmanager
# than one that silently mails nobody. POSIX sh + awk: runs in the busybox
# based prom/alertmanager image.
set -eu

template=${1:-/etc/alertmanager/alertmanager.yml}
output=${2:-/tmp/alertmanager.yml}
[ "$#" -ge 1 ] && shift
[ "$#" -ge 1 ] && shift
[ "${1:-}" = "--" ] && shift

umask 077
awk '
BEGIN { q = sprintf("%c", 39) }
/^[[:space:]]*#/ { print; next }
{
    line = $0
    out = ""
    while (match(line, /\$\{[A-Za-z_][A-Za-z0-9_]*\}/)) {
        name = substr(line, RSTART + 2, RLENGTH - 3)
        if (!(name in ENVIRON) || ENVIRON[name] == "") {
            printf "render-config: %s is not set\n", name > "/dev/stderr"
            failed = 1
        }
        value = ENVIRON[name]
        gsub(q, q q, value)
        out = out substr(line, 1, RSTART - 1) value
        line = substr(line, RSTART + RLENGTH)
    }
    print out line
}
END { exit failed }
' "$template" > "$output"

if [ "${RENDER_ONLY:-0}" = 1 ]; then
    exit 0
fi
exec /bin/alertmanager --config.file="$output" "$@"
