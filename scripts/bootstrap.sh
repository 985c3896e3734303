# Sourced by run.sh and test.sh: install what a fresh Debian machine lacks,
# and keep .venv in step with pyproject.toml. Safe to run again: each step
# checks first and does nothing when all is in place.

_apt_updated=0

as_root() {
    if ((EUID == 0)); then "$@"; else sudo "$@"; fi
}

# apt_install PACKAGE...: install Debian packages; `apt-get update` runs once,
# and only when something is missing.
apt_install() {
    echo "bootstrap: installing $*" >&2
    if ((_apt_updated == 0)); then
        as_root apt-get update -qq
        _apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ensure_command COMMAND PACKAGE: install PACKAGE unless COMMAND is on PATH.
ensure_command() {
    command -v "$1" >/dev/null || apt_install "$2"
}

# Podman with what it needs on these hosts: runc (crun refuses hybrid cgroups),
# catatonit (the pause image), and busybox-static (the tests' image, built locally).
ensure_podman() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    [[ -x /usr/libexec/podman/catatonit ]] || command -v catatonit >/dev/null || missing+=(catatonit)
    [[ -x /bin/busybox ]] || missing+=(busybox-static)
    command -v netavark >/dev/null || [[ -x /usr/lib/podman/netavark ]] || missing+=(netavark)
    if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
}

# nftables and iproute2: the Service proxy's rules, the overlay's and the sandbox's links and namespaces.
ensure_network_tools() {
    local missing=()
    command -v nft >/dev/null || missing+=(nftables)
    command -v ip >/dev/null || missing+=(iproute2)
    if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
}

# A Python 3.11+ that can make a venv with pip (Debian splits venv out).
ensure_python() {
    if ! python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        apt_install python3 python3-venv
    fi
}

# .venv with nodeos installed in editable mode; pip runs again only when
# pyproject.toml changed since the last install (the stamp holds its hash).
ensure_venv() {
    if ! .venv/bin/python -c '' 2>/dev/null; then
        echo "bootstrap: creating .venv" >&2
        rm -rf .venv
        python3 -m venv .venv
    fi
    local stamp=.venv/.pyproject.sha256 want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        echo "bootstrap: pip install -e '.[test]'" >&2
        .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
        echo "$want" >"$stamp"
    fi
}
