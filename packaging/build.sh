#!/bin/bash
# Build the nodeos package into dist/:   packaging/build.sh deb|rpm
#
# Both formats carry the same tree, staged here once:
#   /opt/nodeos                  a self-contained virtualenv (nodeos and its dependencies)
#   /usr/bin/nodeos              a symlink to /opt/nodeos/bin/nodeos
#   <unitdir>/nodeos.service     from config/nodeos.service
#   /etc/nodeos/nodeos.toml      from config/all.toml (a config file kept on upgrade)
#   /etc/nodeos/containers.conf  from config/containers.conf (likewise)
#   /usr/share/doc/nodeos/examples/  the master, worker and all-in-one examples
# and the maintainer scripts create /var/lib/nodeos (0700).
#
# The virtualenv links to the distribution's interpreter (/usr/bin/python3.X, the one
# NODEOS_PYTHON names, default /usr/bin/python3), not to whichever python3 is first on
# PATH: a venv is tied to its interpreter's path, so the package depends on exactly
# that interpreter. Dependencies come from PyPI (or pip's cache), pinned to the
# versions in the source tree's .venv when there is one, so the package runs what
# the test suite ran.
#
# Environment: NODEOS_PYTHON (target interpreter), NODEOS_VERSION (default: pyproject's),
# NODEOS_RELEASE (default 1), NODEOS_PIP (a pip >= 22.3, default .venv/bin/pip or python3 -m pip),
# DIST (output directory, default dist/).
set -euo pipefail
umask 022

usage() { echo "usage: packaging/build.sh deb|rpm" >&2; exit 2; }
[ $# -eq 1 ] || usage
format=$1
case $format in deb|rpm) ;; *) usage ;; esac

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(dirname "$here")
dist=${DIST:-$source_dir/dist}

target_python=${NODEOS_PYTHON:-/usr/bin/python3}
[ -x "$target_python" ] || { echo "error: no interpreter at $target_python (set NODEOS_PYTHON)" >&2; exit 1; }
py_minor=$("$target_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
python_bin=/usr/bin/python$py_minor   # the path the venv links to, on the build host and the target
[ -x "$python_bin" ] || { echo "error: $target_python is not a distribution interpreter ($python_bin missing)" >&2; exit 1; }

if [ -n "${NODEOS_PIP:-}" ]; then pip=($NODEOS_PIP)
elif [ -x "$source_dir/.venv/bin/pip" ]; then pip=("$source_dir/.venv/bin/pip")
else pip=(python3 -m pip)
fi

version=${NODEOS_VERSION:-$("$python_bin" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$source_dir/pyproject.toml")}
release=${NODEOS_RELEASE:-1}

for tool in $([ "$format" = deb ] && echo dpkg-deb || echo rpmbuild); do
    command -v "$tool" >/dev/null || { echo "error: $tool is not installed (apt-get install $([ "$tool" = dpkg-deb ] && echo dpkg || echo rpm))" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/nodeos-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/root
venv=/opt/nodeos

step() { echo "== $*" >&2; }

build_wheel() {
    # Build from a copy, so setuptools' build/ and egg-info stay out of the source tree.
    step "wheel of nodeos $version"
    mkdir -p "$work/src" "$work/wheels"
    cp -r "$source_dir/pyproject.toml" "$source_dir/README.md" "$source_dir/nodeos" "$work/src/"
    find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
    sed -i "s/^version = .*/version = \"$version\"/" "$work/src/pyproject.toml"
    "${pip[@]}" wheel --quiet --no-deps --wheel-dir "$work/wheels" "$work/src"
}

constraints() {
    # The source tree's .venv pins what the tests ran against; nodeos itself is the wheel.
    if [ -x "$source_dir/.venv/bin/pip" ]; then
        "$source_dir/.venv/bin/pip" freeze --exclude-editable | grep -v -i '^nodeos[ =@]' > "$work/constraints.txt" || true
    else
        : > "$work/constraints.txt"
    fi
}

build_venv() {
    step "virtualenv $venv on $python_bin"
    "$python_bin" -m venv --without-pip "$stage$venv"
    "${pip[@]}" --python "$stage$venv/bin/python" install --quiet --no-compile --no-warn-script-location \
        --disable-pip-version-check -c "$work/constraints.txt" "$work"/wheels/nodeos-*.whl
    # The venv was made at $stage$venv: point its scripts, pyvenv.cfg and records at $venv.
    grep -rlIF "$stage" "$stage$venv" | xargs -r sed -i "s#$stage##g"
    # direct_url.json records the wheel's temporary path: nodeos is a plain install here.
    rm -f "$stage$venv"/lib/python*/site-packages/nodeos-*.dist-info/direct_url.json
    sed -i '/direct_url.json/d' "$stage$venv"/lib/python*/site-packages/nodeos-*.dist-info/RECORD
    # Byte-compile with the installed paths, so the package owns its .pyc files.
    "$stage$venv/bin/python" -m compileall -q -j 0 -s "$stage" -p / "$stage$venv/lib" >/dev/null
    "$stage$venv/bin/python" -c 'import nodeos.cli.main' \
        || { echo "error: the staged virtualenv cannot import nodeos" >&2; exit 1; }
}

stage_files() {
    local unitdir=$1
    step "files"
    mkdir -p "$stage/usr/bin" "$stage$unitdir" "$stage/etc/nodeos" "$stage/usr/share/doc/nodeos/examples"
    ln -s "$venv/bin/nodeos" "$stage/usr/bin/nodeos"
    install -m 0644 "$source_dir/config/nodeos.service" "$stage$unitdir/nodeos.service"
    install -m 0644 "$source_dir/config/all.toml" "$stage/etc/nodeos/nodeos.toml"
    install -m 0644 "$source_dir/config/containers.conf" "$stage/etc/nodeos/containers.conf"
    install -m 0644 "$source_dir"/config/{master,worker,all}.toml "$stage/usr/share/doc/nodeos/examples/"
    install -m 0644 "$here/README.md" "$stage/usr/share/doc/nodeos/README.packaging.md"
}

build_deb() {
    local arch control=$stage/DEBIAN out
    arch=$(dpkg --print-architecture)
    stage_files /lib/systemd/system
    step "deb"
    mkdir -p "$control"
    sed -e "s/@VERSION@/$version-$release/" -e "s/@ARCH@/$arch/" -e "s/@PYTHON@/python$py_minor/" \
        -e "s/@SIZE@/$(du -sk --exclude=DEBIAN "$stage" | cut -f1)/" "$here/deb/control" > "$control/control"
    install -m 0644 "$here/deb/conffiles" "$control/conffiles"
    install -m 0755 "$here"/deb/{postinst,prerm,postrm} "$control/"
    mkdir -p "$dist"
    out=$dist/nodeos_${version}-${release}_${arch}.deb
    dpkg-deb --root-owner-group -Zxz -z6 --build "$stage" "$out" >/dev/null
    echo "$out"
}

build_rpm() {
    local arch out
    arch=$(uname -m)
    stage_files /usr/lib/systemd/system
    step "rpm"
    mkdir -p "$work/rpm" "$dist"
    rpmbuild -bb --quiet "$here/rpm/nodeos.spec" \
        --define "_topdir $work/rpm" --define "_rpmdir $work/rpm/out" \
        --define "stage $stage" --define "version $version" --define "release $release" \
        --define "python_bin $python_bin" --target "$arch" >/dev/null
    out=$dist/nodeos-${version}-${release}.${arch}.rpm
    mv "$work/rpm/out/$arch"/nodeos-*.rpm "$out"
    echo "$out"
}

build_wheel
constraints
build_venv
"build_$format"
