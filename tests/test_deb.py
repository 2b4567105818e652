"""The Debian package, for real: built from this checkout, installed with apt into fresh minimal
Debian 13 and 12 roots (mmdebstrap, Debian's archive only), used, upgraded and purged there.

Each root is made once per session (both at once, while the packages build). Commands run in
it through a private mount and PID namespace that mounts /proc, /dev, /sys and a fresh /run,
then chroots: nothing is left mounted, and every process ends with the command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import free_port, require_peer

ROOT = Path(__file__).resolve().parent.parent
RELEASES = ("trixie", "bookworm")  # Debian 13 and 12
DEB_TIMEOUT_S = 600
# Debian's tools with Debian's python3, whatever is first on this PATH (pyenv, a venv).
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# Inside a root: a private /proc, /dev, /sys and /run, then chroot.
ENTER = r"""
set -e
r="$1"; shift
mount -t proc proc "$r/proc"
mount --rbind /dev "$r/dev"
mount --rbind /sys "$r/sys"
mount -t tmpfs -o mode=755 tmpfs "$r/run"
mkdir -m 1777 "$r/run/lock"
exec chroot "$r" "$@"
"""
# What the package installs, besides the program under /usr/share/printer-supervisor/.
FILES = {
    "/etc/printer-supervisor/config.toml",
    "/usr/bin/printer-supervisorctl",
    "/usr/lib/systemd/system/printer-supervisor.service",
    "/usr/lib/sysusers.d/printer-supervisor.conf",
    "/usr/lib/udev/rules.d/70-printer-supervisor.rules",
    "/usr/share/doc/printer-supervisor/README.Debian",
    "/usr/share/doc/printer-supervisor/README.firmware.md",
    "/usr/share/doc/printer-supervisor/README.md.gz",
    "/usr/share/doc/printer-supervisor/changelog.gz",
    "/usr/share/doc/printer-supervisor/copyright",
    "/usr/share/lintian/overrides/printer-supervisor",
    "/usr/share/man/man1/printer-supervisorctl.1.gz",
    "/usr/share/man/man5/printer-supervisor.conf.5.gz",
    "/usr/share/man/man8/printer-supervisor.8.gz",
    "/usr/share/python3/runtime.d/printer-supervisor.rtupdate",
    "/usr/share/printer-supervisor/printer-supervisorctl",
}
# Supervisor's files that ours must never be.
SUPERVISORS = ("/usr/bin/supervisorctl", "/usr/share/man/man1/supervisorctl.1.gz")


def run(*args: str | Path, cwd: Path = ROOT, timeout: float = DEB_TIMEOUT_S,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, check=False, env=env)
    assert result.returncode == 0, f"{args}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


@dataclass
class Root:
    """A fresh minimal Debian root (mmdebstrap --variant=apt) and the way into it."""

    release: str
    path: Path
    making: subprocess.Popen[bytes] | None = None

    def sh(self, script: str, *, check: bool = True,
           timeout: float = DEB_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        env = {"PATH": SYSTEM_PATH, "HOME": "/root", "LANG": "C.UTF-8",
               "DEBIAN_FRONTEND": "noninteractive"}
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "sh", "-c",
             ENTER, "enter", str(self.path), "sh", "-c", script],
            capture_output=True, text=True, timeout=timeout, check=False, env=env)
        if check:
            assert result.returncode == 0, (
                f"{self.release}: {script}\n{result.stdout[-4000:]}{result.stderr[-4000:]}")
        return result

    def apt_install(self, *packages: str) -> str:
        return self.sh("apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 "
                       + " ".join(packages)).stdout

    def put(self, source: Path, inside: str) -> str:
        target = self.path / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        return inside


@pytest.fixture(scope="session")
def making(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Root]]:
    """Both roots, started at once (each ≈ 30 s, mostly downloads) while the packages build."""
    mmdebstrap = require_peer("mmdebstrap", "mmdebstrap")
    require_peer("unshare", "util-linux")
    base = tmp_path_factory.mktemp("roots")
    made = {release: Root(release, base / release) for release in RELEASES}
    pristine = os.environ.get("PRINTER_SUPERVISOR_DEB_ROOTS")  # roots made before, by hand
    for release, root in made.items():
        if pristine:
            run("cp", "-a", Path(pristine) / release, root.path)
            continue
        # --skip: keep apt's lists (apt installs into the root afterwards). The policy-rc.d
        # keeps every daemon (Supervisor's too) from starting in the root.
        root.making = subprocess.Popen(
            [mmdebstrap, "--mode=root", "--variant=apt", "--skip=cleanup/apt/lists",
             "--include=man-db",  # systemd-analyze verify looks up Documentation= with man
             "--customize-hook=printf '#!/bin/sh\\nexit 101\\n' > \"$1/usr/sbin/policy-rc.d\"",
             "--customize-hook=chmod 755 \"$1/usr/sbin/policy-rc.d\"",
             release, str(root.path)],
            stdout=(base / f"{release}.log").open("w"), stderr=subprocess.STDOUT,
            env={"PATH": SYSTEM_PATH})
    yield made
    for root in made.values():
        if root.making is not None and root.making.poll() is None:
            root.making.kill()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def debs(tmp_path_factory: pytest.TempPathFactory, making: dict[str, Root]) -> dict[str, Path]:
    """The package as `make deb` builds it, and an older build of it (for the upgrade)."""
    require_peer("dpkg-buildpackage", "dpkg-dev debhelper dh-python pybuild-plugin-pyproject")
    out = tmp_path_factory.mktemp("debs")
    started = time.monotonic()
    current = Path(run(ROOT / "scripts/build-deb", "--out", out / "current").stdout.split()[-1])
    version = current.name.split("_")[1]
    older = Path(run(ROOT / "scripts/build-deb", "--out", out / "older", "--version",
                     f"{version}~older1").stdout.split()[-1])
    print(f"\nbuilt {current.name} and {older.name} in {time.monotonic() - started:.1f} s")
    return {"current": current, "older": older}


@pytest.fixture(scope="session")
def roots(making: dict[str, Root], debs: dict[str, Path]) -> dict[str, Root]:
    started = time.monotonic()
    for root in making.values():
        if root.making is not None:
            code = root.making.wait(DEB_TIMEOUT_S)
            log = root.path.parent / f"{root.release}.log"
            assert code == 0, log.read_text()[-3000:]
            root.making = None
    print(f"\nroots ready {time.monotonic() - started:.1f} s after the packages were built")
    return making


def fake_usb_printer(sysfs: Path, devfs: Path) -> None:
    """A USB printer in a sysfs tree of our own, as the kernel lays it out, its node a FIFO."""
    device = sysfs / "devices/pci0000:00/0000:00:14.0/usb1/1-1"
    interface = device / "1-1:1.0"
    node = interface / "usbmisc/lp0"
    node.mkdir(parents=True)
    files = {
        device: {"idVendor": "04f9", "idProduct": "0027", "bcdDevice": "0100",
                 "bDeviceClass": "00", "bDeviceSubClass": "00", "bDeviceProtocol": "00",
                 "bNumInterfaces": " 1", "busnum": "1", "devnum": "2", "devpath": "1",
                 "speed": "480", "serial": "TEST0001", "manufacturer": "Brother",
                 "product": "HL-2030 series"},
        interface: {"bInterfaceNumber": "00", "bAlternateSetting": " 0",
                    "bInterfaceClass": "07", "bInterfaceSubClass": "01",
                    "bInterfaceProtocol": "02"},
        node: {"dev": "180:0", "uevent": "MAJOR=180\nMINOR=0\nDEVNAME=usb/lp0"},
    }
    for directory, attributes in files.items():
        for name, value in attributes.items():
            (directory / name).write_text(value + "\n")
    (interface / "ieee1284_id").write_text("MFG:Brother;MDL:HL-2030 series;CMD:PJL;")
    links = sysfs / "bus/usb/devices"
    links.mkdir(parents=True)
    for target in (device, interface):
        (links / target.name).symlink_to(os.path.relpath(target, links))
    (sysfs / "class/usbmisc").mkdir(parents=True)
    (sysfs / "class/usbmisc/lp0").symlink_to(os.path.relpath(node, sysfs / "class/usbmisc"))
    (devfs / "usb").mkdir(parents=True)
    os.mkfifo(devfs / "usb/lp0")



def configure_printer(root: Root, base_port: int) -> str:
    """The user's edit of the conffile: a USB printer (in a fake /sys) served from base_port."""
    fake_usb_printer(root.path / "srv/sys", root.path / "srv/dev")
    edit = (f'\n# edited by the test\n[daemon]\nsysfs = "/srv/sys"\ndevfs = "/srv/dev"\n'
            f'event_source = "none"\nbind = ["127.0.0.1"]\nmdns = "off"\n'
            f'base_port = {base_port}\n')
    conffile = root.path / "etc/printer-supervisor/config.toml"
    conffile.write_text(conffile.read_text(encoding="utf-8") + edit, encoding="utf-8")
    return conffile.read_text(encoding="utf-8")


def unit_smoke(root: Root, smoke: str, name: str, fifo: str) -> int:
    """The unit's own command line as its user, with the conffile; the printer's port."""
    out = root.sh(f"python3 {smoke} --unit {name} --fifo {fifo}").stdout
    assert "ok: SIGTERM, exit 0" in out, out
    return int(re.findall(r"^port (\d+)$", out, re.M)[-1])


def check_installed(root: Root, deb: Path) -> None:
    listed = set(root.sh("dpkg -L printer-supervisor").stdout.split())
    files = {p for p in listed if not (root.path / p.lstrip("/")).is_dir()}
    private = {p for p in files if p.startswith("/usr/share/printer-supervisor/")}
    assert files - private == FILES - {p for p in FILES if p.startswith(
        "/usr/share/printer-supervisor/")}, sorted(files - private)
    assert "/usr/share/printer-supervisor/supervisor/__main__.py" in private
    assert not [p for p in files if p.startswith("/usr/lib/python3")], "not dist-packages"
    assert not set(SUPERVISORS) & files
    # Byte-compiled at install (dh_python3), and removed with the package.
    assert list((root.path / "usr/share/printer-supervisor/supervisor").glob(
        "__pycache__/*.pyc"))
    # The conffile, the user and the unit.
    assert root.sh("dpkg-query -W -f='${Conffiles}' printer-supervisor").stdout.split()[0] \
        == "/etc/printer-supervisor/config.toml"
    user = root.sh("getent passwd printer-supervisor; id -nG printer-supervisor").stdout
    assert "/usr/sbin/nologin" in user and "lp" in user.split(), user
    unit = (root.path / "usr/lib/systemd/system/printer-supervisor.service").read_text()
    assert "ExecStart=/usr/bin/printer-supervisorctl run --config " \
        "/etc/printer-supervisor/config.toml" in unit
    assert "Documentation=man:printer-supervisor(8) man:printer-supervisorctl(1) " \
        "man:printer-supervisor.conf(5)" in unit
    verified = root.sh("systemd-analyze verify /usr/lib/systemd/system/printer-supervisor"
                       ".service 2>&1; echo rc=$?").stdout
    assert verified.strip() == "rc=0", verified
    assert (root.path / "etc/systemd/system/multi-user.target.wants/"
            "printer-supervisor.service").is_symlink(), "enabled on install"
    # The man pages under their Debian names, saying the Debian command.
    page = root.sh("zcat /usr/share/man/man1/printer-supervisorctl.1.gz").stdout
    assert ".TH \"printer-supervisorctl\" \"1\"" in page and re.search(
        r"(?<![-\\])supervisorctl", page) is None
    # Dependencies from Debian's archive only: nothing from pip, anywhere.
    origins = root.sh(
        "cd /tmp && python3 -c 'import jeepney, pyudev, sdnotify, transitions; "
        "print(*(m.__file__ for m in (jeepney, pyudev, sdnotify, transitions)))'"
        " | xargs dpkg -S").stdout
    assert all(line.split(":")[0].startswith("python3-") for line in origins.splitlines()), \
        origins
    assert root.sh("dpkg-query -W -f='${db:Status-Status}' python3-pip 2>/dev/null || true"
                   ).stdout != "installed"
    assert not root.sh("ls /usr/local/lib/python3*/dist-packages 2>/dev/null || true").stdout


def check_purged(root: Root) -> None:
    root.sh("apt-get purge -y -o Dpkg::Use-Pty=0 printer-supervisor")
    status = root.sh("dpkg-query -W -f='${db:Status-Status}' printer-supervisor 2>/dev/null; "
                     "true").stdout
    assert status in ("", "not-installed"), status
    # Nothing with its name is left but the user, dpkg's and apt's records and logs, man's
    # cache of pages it showed, and the test's own files.
    kept = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/var/lib/dpkg/",
            "/var/log/", "/var/cache/apt/", "/var/cache/man/", "/opt/test/")
    left = root.sh("find / -xdev -name '*printer-supervisor*' -o -name '*printer_supervisor*' "
                   "| grep -v '^/proc' || true").stdout.split()
    left += root.sh("grep -rl printer-supervisor /etc /var/lib /usr 2>/dev/null || true"
                    ).stdout.split()
    assert not [p for p in left if not p.startswith(kept)], left
    for gone in ("/var/lib/printer-supervisor", "/var/log/printer-supervisor",
                 "/etc/printer-supervisor", "/usr/share/printer-supervisor"):
        assert not (root.path / gone.lstrip("/")).exists(), gone
    assert root.sh("getent passwd printer-supervisor").stdout.startswith("printer-supervisor:")


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("release", RELEASES)
def test_the_package_installs_upgrades_and_purges(release: str, debs: dict[str, Path],
                                                  roots: dict[str, Root]) -> None:
    root = roots[release]
    started = time.monotonic()
    smoke = root.put(ROOT / "debian/tests/smoke", "/opt/test/smoke")
    older = root.put(debs["older"], f"/opt/test/{debs['older'].name}")
    current = root.put(debs["current"], f"/opt/test/{debs['current'].name}")

    # An older build first, used with an edited conffile: its printer gets a port, remembered.
    installed = root.apt_install(older)
    assert "python3-transitions" in installed and "pip" not in installed.split()
    fifo, name = "/srv/dev/usb/lp0", "hl-2030-series"  # auto: named after its model
    edited = configure_printer(root, free_port())
    port = unit_smoke(root, smoke, name, fifo)
    ports = (root.path / "var/lib/printer-supervisor/ports.json").read_bytes()

    # Upgraded: the edit, the remembered port and the enabled service stay; the service
    # comes back (its maintainer script restarts it; here it is started as the unit would).
    upgraded = root.apt_install(current)
    assert "Unpacking printer-supervisor" in upgraded and "over (" in upgraded, upgraded
    assert (root.path / "etc/printer-supervisor/config.toml").read_text() == edited
    assert (root.path / "var/lib/printer-supervisor/ports.json").read_bytes() == ports
    postinst = (root.path / "var/lib/dpkg/info/printer-supervisor.postinst").read_text()
    assert "deb-systemd-invoke $_dh_action 'printer-supervisor.service'" in postinst \
        or "deb-systemd-invoke restart 'printer-supervisor.service'" in postinst, postinst
    assert unit_smoke(root, smoke, name, fifo) == port

    check_installed(root, debs["current"])
    out = root.sh(f"python3 {smoke}").stdout  # the autopkgtest's smoke, as it runs there
    assert "ok: SIGTERM, exit 0" in out
    assert "all steps worked" in root.sh("cd /tmp && printer-supervisorctl demo").stdout

    # Debian's Supervisor beside it: no file in common, both commands work, and ours still
    # imports its own `supervisor`, in the service and in demo's children.
    root.apt_install("supervisor")
    theirs = set(root.sh("dpkg -L supervisor").stdout.split())
    ours = set(root.sh("dpkg -L printer-supervisor").stdout.split())
    common = {p for p in theirs & ours if not (root.path / p.lstrip("/")).is_dir()}
    assert not common, common
    assert "supervisorctl" in root.sh("supervisorctl --help").stdout
    assert root.sh("printer-supervisorctl --help").stdout.startswith(
        "usage: printer-supervisorctl")
    assert "/usr/lib/python3/dist-packages/supervisor/" in root.sh(
        "cd /tmp && python3 -c 'import supervisor; print(supervisor.__file__)'").stdout
    assert "ok: SIGTERM, exit 0" in root.sh(f"python3 {smoke}").stdout
    assert "all steps worked" in root.sh("cd /tmp && printer-supervisorctl demo").stdout

    check_purged(root)
    print(f"\n{release}: install, upgrade, use, purge in {time.monotonic() - started:.1f} s")


@pytest.mark.timeout(900)
def test_lintian_is_clean(debs: dict[str, Path]) -> None:
    lintian = require_peer("lintian", "lintian")
    result = subprocess.run(
        [lintian, "--fail-on", "error,warning", "-EvIL", "+pedantic", debs["current"]],
        capture_output=True, text=True, timeout=600, check=False,
        env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root")})
    tags = [line for line in result.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
    assert result.returncode == 0 and not tags, result.stdout + result.stderr


@pytest.mark.timeout(900)
def test_autopkgtest_passes(debs: dict[str, Path], roots: dict[str, Root],
                            tmp_path: Path) -> None:
    """debian/tests (smoke, demo) by autopkgtest itself, its chroot runner in the 13 root."""
    autopkgtest = require_peer("autopkgtest", "autopkgtest")
    root = roots["trixie"]
    # Its tests use the installed package only: the source it gets is debian/ (copying the
    # checkout would copy .venv too).
    source = tmp_path / "src"
    shutil.copytree(ROOT / "debian", source / "debian", ignore=shutil.ignore_patterns(
        "tmp", "printer-supervisor", ".debhelper", "*.log", "*.substvars", "files"))
    # The runner needs the root's /proc and /dev; the rest it brings. It runs once both roots'
    # tests are done with it (it installs the package again).
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "sh", "-c",
         'mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && '
         'mount -t tmpfs tmpfs "$1/run" && mkdir -m 1777 "$1/run/lock" && shift && exec "$@"',
         "enter", str(root.path), autopkgtest, "--no-built-binaries", str(debs["current"]),
         f"{source}/", "--output-dir", str(tmp_path / "out"), "--", "chroot",
         str(root.path)],
        capture_output=True, text=True, timeout=600, check=False,
        env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": "/root"})
    summary = (tmp_path / "out/summary").read_text() if (tmp_path / "out/summary").exists() \
        else ""
    assert result.returncode == 0, f"{summary}\n{result.stdout[-4000:]}{result.stderr[-4000:]}"
    assert re.search(r"^smoke\s+PASS", summary, re.M) and re.search(
        r"^demo\s+PASS", summary, re.M), summary
