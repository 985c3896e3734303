"""The deb and rpm that ``packaging/build.sh`` builds: their contents, and the deb installed on a clean Debian.

Each package is built once per session into a temporary dist/ (about 20 s each;
the ``deb`` fixture is in tests/conftest.py). The install tests need root,
``debootstrap`` and a Debian mirror: they install the deb with ``apt-get`` into
a fresh copy of a minimal Debian 12 tree (tests.packaging), then run ``nodeos``
there through ``chroot``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging import BUILD, CHROOT_ENV, REPO, apt_install, build, fresh_root, in_root, run

# -- the build script's bad input (fast) ----------------------------------------------------------------


@pytest.mark.parametrize("argv", [(), ("zip",), ("deb", "rpm")])
def test_build_usage_is_one_line_and_exit_2(argv: tuple[str, ...]) -> None:
    done = run(BUILD, *argv, check=False)
    assert done.returncode == 2
    assert done.stderr == "usage: packaging/build.sh deb|rpm\n"


def test_build_refuses_a_missing_interpreter(tmp_path: Path) -> None:
    done = run(BUILD, "deb", check=False, env={**os.environ, "NODEOS_PYTHON": "/nonexistent/python3",
                                               "DIST": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr == "error: no interpreter at /nonexistent/python3 (set NODEOS_PYTHON)\n"
    assert list(tmp_path.iterdir()) == []


# -- the deb's contents -------------------------------------------------------------------------------------


def control(package: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in run("dpkg-deb", "-f", package).stdout.splitlines():
        if line and not line.startswith(" "):
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def contents(package: Path) -> dict[str, str]:
    """Path -> `ls -l`-style mode string, from `dpkg-deb -c`."""
    listed = {}
    for line in run("dpkg-deb", "-c", package).stdout.splitlines():
        mode, owner, _size, _date, _time, name = line.split(None, 5)
        name = name.split(" -> ")[0].removeprefix(".")
        listed[name.rstrip("/") or "/"] = f"{mode} {owner}"
    return listed


@pytest.mark.slow
def test_deb_control_fields(deb: Path) -> None:
    fields = control(deb)
    assert fields["Package"] == "nodeos"
    assert fields["Version"] == "0.1.0-1"
    assert fields["Architecture"] == run("dpkg", "--print-architecture").stdout.strip()
    depends = [name.strip() for name in fields["Depends"].split(",")]
    assert depends == ["python3.11", "podman", "nftables", "iproute2"]
    assert int(fields["Installed-Size"]) > 10_000  # KiB: the virtualenv is in it
    assert deb.name == f"nodeos_0.1.0-1_{fields['Architecture']}.deb"


@pytest.mark.slow
def test_deb_files_and_conffiles(deb: Path) -> None:
    listed = contents(deb)
    for path in ("/opt/nodeos/bin/nodeos", "/opt/nodeos/pyvenv.cfg", "/lib/systemd/system/nodeos.service",
                 "/etc/nodeos/nodeos.toml", "/etc/nodeos/containers.conf",
                 "/usr/share/doc/nodeos/examples/worker.toml"):
        assert path in listed, path
    assert listed["/usr/bin/nodeos"].startswith("lrwxrwxrwx")
    assert listed["/opt/nodeos/bin/nodeos"] == "-rwxr-xr-x root/root"
    assert all(owner.endswith("root/root") for owner in listed.values())
    assert any(path.startswith("/opt/nodeos/lib/python3.11/site-packages/nodeos/") for path in listed)
    assert any(path.endswith(".pyc") for path in listed)  # compiled at build time, owned by the package
    conffiles = run("sh", "-c", f"dpkg-deb --ctrl-tarfile {deb} | tar -xO ./conffiles").stdout.split()
    assert conffiles == ["/etc/nodeos/nodeos.toml", "/etc/nodeos/containers.conf"]


@pytest.mark.slow
def test_deb_carries_the_source_trees_unit_and_config(deb: Path, tmp_path: Path) -> None:
    run("dpkg-deb", "-x", deb, tmp_path)
    assert (tmp_path / "lib/systemd/system/nodeos.service").read_text() == (REPO / "config/nodeos.service").read_text()
    assert (tmp_path / "etc/nodeos/nodeos.toml").read_text() == (REPO / "config/all.toml").read_text()
    venv = tmp_path / "opt/nodeos"
    assert "home = /usr/bin\n" in (venv / "pyvenv.cfg").read_text()
    assert os.readlink(venv / "bin/python3.11") == "/usr/bin/python3.11"
    assert (venv / "bin/nodeos").read_text().startswith("#!/opt/nodeos/bin/python\n")
    # Nothing in the tree still names the build's temporary directory.
    leftover = run("grep", "-rlI", "nodeos-package.", venv, check=False)
    assert leftover.stdout == ""


# -- the deb on a clean Debian ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(deb: Path, rootfs_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = fresh_root(rootfs_cache, tmp_path_factory.mktemp("installed"))
    apt_install(root, deb)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_installed_nodeos_runs(installed: Path) -> None:
    assert in_root(installed, "nodeos", "--help").stdout.startswith("usage: nodeos")
    assert in_root(installed, "nodeos", "version", "--client").stdout == "Client Version: v1.32.0-nodeos.0.1.0\n"


@pytest.mark.slow
def test_installed_doctor_checks_the_packaged_config(installed: Path) -> None:
    # apt brought podman, nft and ip: the tools checks pass; the kernel ones are the host's.
    done = in_root(installed, "nodeos", "doctor", "--json", check=False)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    assert report["config"] == "/etc/nodeos/nodeos.toml"
    assert report["role"] == "all"
    status = {check["name"]: check["status"] for check in report["checks"]}
    assert status["podman"] == "ok"
    assert status["nft"] == "ok"


@pytest.mark.slow
def test_installed_layout_and_enabled_unit(installed: Path) -> None:
    data = installed / "var/lib/nodeos"
    assert data.is_dir() and data.stat().st_mode & 0o777 == 0o700
    wants = installed / "etc/systemd/system/multi-user.target.wants/nodeos.service"
    assert os.readlink(wants) == "/lib/systemd/system/nodeos.service"
    status = in_root(installed, "dpkg-query", "-W", "-f", "${Status} ${Version}", "nodeos").stdout
    assert status == "install ok installed 0.1.0-1"


@pytest.mark.slow
def test_installed_unit_verifies(installed: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    done = run("systemd-analyze", "verify", f"--root={installed}", "nodeos.service", check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


MASTER_TOML = """\
[node]
name = "m1"
role = "master"
data_dir = "/var/lib/nodeos"

[api]
listen = "127.0.0.1:6443"
insecure_listen = "127.0.0.1:8080"
"""

# In the tree, in a network namespace of its own (loopback only, no port clashes with the host):
# start the packaged daemon, wait for /healthz and list the Nodes' namespace, then SIGTERM it.
SERVE_AND_ASK = """\
ip link set lo up
healthz='import urllib.request as u; print(u.urlopen("http://127.0.0.1:8080/healthz").read().decode())'
nodeos daemon --config /etc/nodeos/master.toml 2>/tmp/daemon.log &
daemon=$!
for _ in $(seq 100); do
    /opt/nodeos/bin/python -c "$healthz" 2>/dev/null && break
    sleep 0.2
done
nodeos -s http://127.0.0.1:8080 get namespaces
nodeos -s http://127.0.0.1:8080 version
kill -TERM $daemon
for _ in $(seq 100); do kill -0 $daemon 2>/dev/null || break; sleep 0.2; done
kill -0 $daemon 2>/dev/null && { echo "daemon still running 20 s after SIGTERM"; kill -KILL $daemon; }
wait $daemon
echo "daemon exited $?"
"""


@pytest.mark.slow
def test_installed_daemon_serves_the_api(installed: Path) -> None:
    (installed / "etc/nodeos/master.toml").write_text(MASTER_TOML)
    done = run("unshare", "--net", "--mount", "--pid", "--fork", f"--mount-proc={installed}/proc",
               "chroot", installed, "sh", "-c", SERVE_AND_ASK, check=False, env=CHROOT_ENV, timeout=120)
    log = (installed / "tmp/daemon.log").read_text()
    assert done.stdout.startswith("ok"), f"{done.stdout}\n{done.stderr}\n{log}"
    assert "kube-system" in done.stdout and "default" in done.stdout
    assert "Server Version: v1.32.0-nodeos.0.1.0" in done.stdout
    assert done.stdout.rstrip().endswith("daemon exited 0"), log
    assert (installed / "var/lib/nodeos").stat().st_mode & 0o777 == 0o700


def _repack(deb: Path, version: str, out: Path) -> Path:
    """The same package under another version: what an upgrade installs."""
    tree = out / "tree"
    run("dpkg-deb", "-R", deb, tree)
    control_file = tree / "DEBIAN/control"
    control_file.write_text(control_file.read_text().replace("Version: 0.1.0-1", f"Version: {version}"))
    package = out / f"nodeos_{version}.deb"
    run("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", tree, package)
    return package


@pytest.mark.slow
def test_upgrade_keeps_the_config_remove_keeps_data_purge_removes_it(
        deb: Path, rootfs_cache: Path, tmp_path: Path) -> None:
    root = fresh_root(rootfs_cache, tmp_path)
    apt_install(root, deb)
    config = root / "etc/nodeos/nodeos.toml"
    config.write_text(config.read_text().replace('role = "all"', 'role = "worker"'))
    (root / "var/lib/nodeos/store.db").write_text("state")

    apt_install(root, _repack(deb, "0.1.1-1", tmp_path))
    assert in_root(root, "dpkg-query", "-W", "-f", "${Version}", "nodeos").stdout == "0.1.1-1"
    assert 'role = "worker"' in config.read_text()  # the operator's edit survives, silently
    assert not (root / "etc/nodeos/nodeos.toml.dpkg-new").exists()
    assert in_root(root, "nodeos", "--help").returncode == 0

    in_root(root, "dpkg", "--remove", "nodeos")
    assert not (root / "opt/nodeos").exists() and not (root / "usr/bin/nodeos").is_symlink()
    assert config.exists() and (root / "var/lib/nodeos/store.db").exists()
    assert not (root / "etc/systemd/system/multi-user.target.wants/nodeos.service").is_symlink()

    in_root(root, "dpkg", "--purge", "nodeos")
    assert not (root / "etc/nodeos").exists()
    assert not (root / "var/lib/nodeos").exists()


# -- the rpm ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (apt-get install rpm)")
    return build("rpm", tmp_path_factory.mktemp("dist"))


def rpm_query(package: Path, *flags: str) -> list[str]:
    return run("rpm", "-qp", *flags, package).stdout.splitlines()


@pytest.mark.slow
def test_rpm_files(rpm: Path) -> None:
    files = set(rpm_query(rpm, "-l"))
    for path in ("/opt/nodeos/bin/nodeos", "/usr/bin/nodeos", "/usr/lib/systemd/system/nodeos.service",
                 "/etc/nodeos/nodeos.toml", "/etc/nodeos/containers.conf", "/var/lib/nodeos",
                 "/usr/share/doc/nodeos/examples/master.toml"):
        assert path in files, path
    assert any(path.startswith("/opt/nodeos/lib/python3.11/site-packages/nodeos/") for path in files)
    assert rpm_query(rpm, "-c") == ["/etc/nodeos/containers.conf", "/etc/nodeos/nodeos.toml"]
    modes = dict(line.split(" ", 1)[::-1] for line in rpm_query(rpm, "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]"))
    assert modes["/var/lib/nodeos"] == "drwx------"


@pytest.mark.slow
def test_rpm_header(rpm: Path) -> None:
    assert rpm_query(rpm, "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}\n") == [f"nodeos 0.1.0 1 {os.uname().machine}"]
    requires = {line.split()[0] for line in rpm_query(rpm, "--requires")}
    assert {"/usr/bin/python3.11", "podman", "nftables", "iproute"} <= requires
    assert not any(name.startswith("lib") and ".so" in name for name in requires)  # no automatic library requires
    scripts = "\n".join(rpm_query(rpm, "--scripts"))
    assert "systemctl enable nodeos.service" in scripts
    assert "systemctl try-restart nodeos.service" in scripts


@pytest.mark.slow
def test_rpm_installs_and_runs_on_a_debian_tree(rpm: Path, rootfs_cache: Path, tmp_path: Path) -> None:
    # No Fedora tree here: rpm itself unpacks the package into the Debian one (its
    # dependencies are Debian's packages there, so --nodeps), and nodeos runs in it.
    root = fresh_root(rootfs_cache, tmp_path)
    in_root(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", "python3.11")
    run("rpm", "--root", root, "--initdb")
    run("rpm", "--root", root, "-i", "--nodeps", rpm, env=CHROOT_ENV)
    assert in_root(root, "nodeos", "--help").stdout.startswith("usage: nodeos")
    assert (root / "var/lib/nodeos").stat().st_mode & 0o777 == 0o700
    # Debian's systemctl names the unit by /lib (a link to /usr/lib there); a Fedora one by /usr/lib.
    wants = os.readlink(root / "etc/systemd/system/multi-user.target.wants/nodeos.service")
    assert wants in ("/usr/lib/systemd/system/nodeos.service", "/lib/systemd/system/nodeos.service")

    config = root / "etc/nodeos/nodeos.toml"
    config.write_text(config.read_text() + "# edited\n")
    run("rpm", "--root", root, "-e", "nodeos", env=CHROOT_ENV)
    assert not (root / "opt/nodeos").exists()
    assert (root / "etc/nodeos/nodeos.toml.rpmsave").read_text().endswith("# edited\n")
