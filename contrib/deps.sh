#!/usr/bin/env bash
# deps.sh - install every package the build, the tests and the benchmarks
# need: `make deps` runs it, and so do `make test`, `make run`, `make bench`
# and `make soak` before they compile anything.
#
# Guarantees: on a machine with none of them, one run (as root) leaves
# every package below installed, and prints what it installed; a failure
# names the package and quotes apt's (or npm's) own message, and exits 1.
# Run as another user, it installs nothing: it prints the command that
# would, and exits 1 if anything is missing.  With everything present it
# prints nothing and exits 0, so that it costs nothing on every `make test`.
#
# Real peers of the tests come from here, never from a hand install: a
# test whose peer is missing on a machine where this ran would be a test
# that silently skips.
set -uo pipefail
cd "$(dirname "$0")/.."

# The lists are the Makefile's (DEB_BUILD, DEB_TEST, NPM_TEST), passed in
# the environment by `make deps`; run by hand, the script reads them there.
if [ -z "${DEB_BUILD:-}" ] || [ -z "${DEB_TEST:-}" ]; then
    eval "$(make -s --no-print-directory print-deps)" || exit 1
fi
read -r -a DEB_BUILD <<<"$DEB_BUILD"
read -r -a DEB_TEST <<<"$DEB_TEST"
read -r -a NPM_TEST <<<"${NPM_TEST:-}"
# npm packages are installed into build/npm (never system-wide).
NPM_DIR=build/npm

installed() {
    dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed'
}

missing=()
for p in "${DEB_BUILD[@]}" "${DEB_TEST[@]}"; do
    installed "$p" || missing+=("$p")
done
command -v npm >/dev/null 2>&1 || missing+=(npm)

npm_missing=()
for p in "${NPM_TEST[@]}"; do
    [ -d "$NPM_DIR/node_modules/${p%@*}" ] || npm_missing+=("$p")
done

if [ ${#missing[@]} = 0 ] && [ ${#npm_missing[@]} = 0 ]; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "make deps: missing packages; run 'make deps' as root, or:" >&2
    [ ${#missing[@]} = 0 ] ||
        echo "  sudo apt-get install ${missing[*]}" >&2
    [ ${#npm_missing[@]} = 0 ] ||
        echo "  npm install --prefix $NPM_DIR ${npm_missing[*]}" >&2
    exit 1
fi

if [ ${#missing[@]} != 0 ]; then
    echo "make deps: installing ${missing[*]}"
    log=$(mktemp) || exit 1
    # a fresh machine may have no package lists yet
    if ! apt-get update -qq >"$log" 2>&1; then
        echo "make deps: apt-get update failed:" >&2
        sed 's/^/  /' "$log" >&2
        rm -f "$log"
        exit 1
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
        echo "make deps: apt-get install failed for one of: ${missing[*]}" >&2
        # apt's E: lines name the package and the reason
        grep -E '^(E|W):' "$log" | sed 's/^/  /' >&2
        grep -qE '^(E|W):' "$log" || tail -n 20 "$log" | sed 's/^/  /' >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
    still=()
    for p in "${missing[@]}"; do
        [ "$p" = npm ] && continue
        installed "$p" || still+=("$p")
    done
    if [ ${#still[@]} != 0 ]; then
        echo "make deps: apt-get did not install: ${still[*]}" >&2
        exit 1
    fi
fi

if [ ${#npm_missing[@]} != 0 ]; then
    echo "make deps: installing from npm into $NPM_DIR: ${npm_missing[*]}"
    mkdir -p "$NPM_DIR"
    log=$(mktemp) || exit 1
    if ! npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error \
            "${npm_missing[@]}" >"$log" 2>&1; then
        echo "make deps: npm install failed for ${npm_missing[*]}:" >&2
        sed 's/^/  /' "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
fi
exit 0
