#!/usr/bin/env bash
# Run a command inside a private D-Bus session bus with an unlocked GNOME Keyring, so that the
# tests that need a real OS keyring (the Secret Service) have one, even on a headless box.
#
#   tests/with_keyring.sh .venv/bin/python -m pytest -q
#
# Needs: dbus-run-session, dbus-send (Debian/Ubuntu: apt-get install dbus gnome-keyring).
# The keyring lives in a fresh temporary folder with a random password; the user's own keyring
# and daemon are never touched. The command's exit status is returned.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi
for tool in dbus-run-session dbus-send gnome-keyring-daemon; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$0: $tool not found (Debian/Ubuntu: apt-get install dbus gnome-keyring)" >&2
        exit 127
    fi
done

# Step 1: start a private session bus and re-run this script inside it.
if [[ -z "${POCKETCI_KEYRING_INNER:-}" ]]; then
    export POCKETCI_KEYRING_INNER=1
    exec dbus-run-session -- "$0" "$@"
fi
unset POCKETCI_KEYRING_INNER

# Step 2: inside the bus, start gnome-keyring-daemon (secrets component only) on private folders
# and unlock its login collection with a random password read from stdin.
state="$(mktemp -d "${TMPDIR:-/tmp}/pocketci-keyring.XXXXXX")"
chmod 700 "$state"
mkdir -m 700 "$state/run" "$state/data"
daemon_pid=""
cleanup() {
    if [[ -n "$daemon_pid" ]]; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s' "$password" | env XDG_RUNTIME_DIR="$state/run" XDG_DATA_HOME="$state/data" \
    gnome-keyring-daemon --foreground --unlock --components=secrets \
    >"$state/daemon.log" 2>&1 &
daemon_pid=$!

ready=""
for _ in $(seq 1 100); do
    if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
        grep -q 'boolean true'; then
        ready=1
        break
    fi
    if ! kill -0 "$daemon_pid" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [[ -z "$ready" ]]; then
    echo "$0: gnome-keyring-daemon did not register org.freedesktop.secrets:" >&2
    cat "$state/daemon.log" >&2 || true
    exit 1
fi

# Step 3: run the command (not exec: the daemon and the folder are cleaned up afterwards).
export POCKETCI_TEST_SECRET_SERVICE=gnome-keyring
status=0
"$@" || status=$?
exit "$status"
