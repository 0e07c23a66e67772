#!/usr/bin/env sh
# Runs its arguments inside a private D-Bus session with an unlocked gnome-keyring (a real Secret
# Service), so the keyring tests run for real:  scripts/with-keyring.sh npx vitest run test/identity
# Without dbus-run-session or gnome-keyring-daemon it runs the arguments directly, and the tests that
# need the Secret Service are reported as skipped (never as passed). Exits with the command's status.
set -eu
if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi
if ! command -v dbus-run-session >/dev/null 2>&1 || ! command -v gnome-keyring-daemon >/dev/null 2>&1; then
  echo "with-keyring: dbus-run-session or gnome-keyring-daemon not found: running without a keyring; the keyring tests will be skipped" >&2
  exec "$@"
fi

# The keyring's files, control socket and the D-Bus session live in a throwaway folder, never in the
# caller's real keyring; it is removed afterwards.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/motebit-keyring.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
trap 'exit 130' INT TERM
mkdir -m 700 "$scratch/run" "$scratch/data" "$scratch/cache"

# Inside the session: start the daemon in the foreground (so its pid is known and it is stopped at the
# end), unlocked with a non-empty password (an empty one leaves no default collection), wait until it
# owns the Secret Service name on the bus, run the command.
inner='
  # Ready means more than owning the bus name: the unlocked default collection must exist, or an early
  # write asks to create one through a prompt nobody can answer ("unlock prompt was dismissed").
  ready() {
    if command -v dbus-send >/dev/null 2>&1; then
      dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q "boolean true" &&
      dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
        org.freedesktop.Secret.Service.ReadAlias string:default 2>/dev/null | grep -q "/org/freedesktop/secrets/collection/" &&
      dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets/aliases/default \
        org.freedesktop.DBus.Properties.Get string:org.freedesktop.Secret.Collection string:Locked 2>/dev/null | grep -q "boolean false"
    else
      [ -S "$XDG_RUNTIME_DIR/keyring/control" ] && sleep 0.5
    fi
  }
  printf "motebit-test" | gnome-keyring-daemon --foreground --unlock --components=secrets >"$SCRATCH/daemon.out" 2>"$SCRATCH/daemon.err" &
  daemon=$!
  trap "kill $daemon 2>/dev/null || true" EXIT
  tries=0
  until ready; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ] || ! kill -0 "$daemon" 2>/dev/null; then
      echo "with-keyring: gnome-keyring-daemon did not start:" >&2
      cat "$SCRATCH/daemon.err" >&2
      exit 1
    fi
    sleep 0.1
  done
  status=0
  "$@" || status=$?
  exit "$status"
'
status=0
SCRATCH="$scratch" XDG_RUNTIME_DIR="$scratch/run" XDG_DATA_HOME="$scratch/data" XDG_CACHE_HOME="$scratch/cache" \
  dbus-run-session -- sh -c "$inner" sh "$@" || status=$?
exit "$status"
