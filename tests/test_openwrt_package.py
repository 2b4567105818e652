"""The OpenWrt feed packages (openwrt/): DEPENDS computed from what really gets imported, mapped
to Python's split standard-library packages; every file the Makefile installs is in the tree and
agrees with the init script and the configuration. OpenWrt's SDK cannot run here: what it would
do with these Makefiles beyond that is not checked (README says so)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from harness import Log, free_base_port

from supervisor.config.loader import load_settings
from supervisor.ctl.client import request
from supervisor.lab.virtual import FakeSysfs, VirtualUsbPrinter

ROOT = Path(__file__).resolve().parent.parent
FEED = ROOT / "openwrt"
PACKAGE = FEED / "net" / "printer-supervisor" / "Makefile"
LIBRARIES = {"transitions": FEED / "lang" / "python" / "python-transitions" / "Makefile"}
UCI_CONFIG = ROOT / "units" / "openwrt" / "printer-supervisor.config"
INIT = ROOT / "units" / "openwrt" / "printer-supervisor.init"
ACL = ROOT / "units" / "openwrt" / "printer-supervisor.acl.json"
MAP = json.loads((Path(__file__).parent / "fixtures" / "openwrt-python3-packages.json")
                 .read_text(encoding="utf-8"))
LIGHT = MAP["stdlib_rest"]
#: What this venv's site-packages start-up adds (setuptools' .pth, the editable install): no
#: router has them.
HERE_ONLY = ("__editable__", "_distutils_hack")
#: As the service runs (supervisorctl run keeps ssl out: nothing of it needs TLS).
BLOCK_SSL = "import sys; sys.modules['ssl'] = None\n"
# Records the modules a process imported, at its exit.
RECORDER = BLOCK_SSL + """import atexit
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write("\\n".join(
    [sys.modules["supervisor"].__file__] +
    [name for name, module in sys.modules.items() if module is not None])))
"""


# -- reading the Makefiles -----------------------------------------------------------------------
def variable(makefile: Path, name: str) -> str:
    """A `NAME:=value` of the Makefile, continuation lines joined."""
    text = makefile.read_text(encoding="utf-8").replace("\\\n", " ")
    found = re.search(rf"^\s*{name}:=(.*)$", text, re.MULTILINE)
    assert found, f"{makefile}: no {name}"
    return " ".join(found.group(1).split())


def depends(makefile: Path) -> set[str]:
    return {word.lstrip("+") for word in variable(makefile, "DEPENDS").split()}


def block(makefile: Path, name: str) -> list[str]:
    text = makefile.read_text(encoding="utf-8").replace("\\\n\t\t", " ")
    found = re.search(rf"^define {re.escape(name)}\n(.*?)^endef", text, re.MULTILINE | re.DOTALL)
    assert found, f"{makefile}: no define {name}"
    return [line.strip() for line in found.group(1).splitlines() if line.strip()]


def packages_of(modules: Iterable[str]) -> set[str]:
    """The OpenWrt packages that hold `modules` (top-level names), python3-light included."""
    stdlib = {module: package for package, names in MAP["stdlib"].items() for module in names}
    found = set()
    for module in {name.split(".")[0] for name in modules}:
        if module in MAP["not_shipped"]:
            pytest.fail(f"{module} is imported, and OpenWrt ships it in no package")
        if module in sys.stdlib_module_names or module in sys.builtin_module_names:
            found.add(stdlib.get(module, LIGHT))
        elif module in MAP["third_party"]:
            found.add(MAP["third_party"][module])
        elif module not in ("supervisor", "__main__") and not module.startswith(HERE_ONLY):
            pytest.fail(f"{module} is imported: which OpenWrt package holds it?")
    return found


# -- what the router configuration imports ------------------------------------------------------
@pytest.fixture(scope="module")
def router_modules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Every module the service imported with the package's UCI file and byte-code, through a
    start, a plug and its events, a job, a reload and a stop (paths moved to a temporary
    directory)."""
    root = tmp_path_factory.mktemp("router")
    text = UCI_CONFIG.read_text(encoding="utf-8")
    for old, new in (("/var/run/printer-supervisor", root / "run"),
                     ("/var/log/printer-supervisor", root / "log"),
                     ("/etc/printer-supervisor", root / "etc")):
        text = text.replace(old, str(new))
    base = free_base_port(4)
    text = text.replace("list bind '::'", "list bind '127.0.0.1'").replace(
        "option base_port '9100'", f"option base_port '{base}'").replace(
        "config daemon 'daemon'\n",
        f"config daemon 'daemon'\n\toption sysfs '{root}/sys'\n\toption devfs '{root}/dev'\n")
    config = root / "printer-supervisor"
    config.write_text(text, encoding="utf-8")
    (root / "etc").mkdir()
    # The package's byte-code, as its Makefile makes it: compiled with -OO (no docstrings, no
    # asserts) beside the sources, which are then deleted; run by a plain python3.
    site = root / "site"
    shutil.copytree(ROOT / "supervisor", site / "supervisor",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-OO", "-m", "compileall", "-q", "-b", "-d", "/", str(site)],
                   check=True, timeout=120)
    for source in site.rglob("*.py"):
        source.unlink()
    modules = root / "modules"
    runner = RECORDER + ("sys.argv = ['supervisorctl', 'run', '--config', sys.argv[2]]\n"
                         "import runpy\nrunpy.run_module('supervisor', run_name='__main__')\n")
    # No system bus and no ubus here, as on a router without avahi: mdns 'auto' finds nothing.
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent",
           "PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)}
    env.pop("NOTIFY_SOCKET", None)
    log = Log(root / "log" / "events.jsonl")
    usb = VirtualUsbPrinter(FakeSysfs(root / "sys"), root / "dev", product_id=0x2C17,
                            model="HP LaserJet 1022")  # needs no firmware
    proc = subprocess.Popen([sys.executable, "-c", runner, str(modules), str(config)],
                            env=env, cwd=root, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        log.wait_for("daemon_started")
        for event in usb.plug():
            assert request(str(root / "run" / "control.sock"),
                           {"v": 1, "cmd": "notify", "event": event})["ok"]
        port = log.wait_for("listener_started")["port"]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"a job")
            conn.shutdown(socket.SHUT_WR)
            conn.recv(1)
        log.wait_for("job_finished")
        proc.send_signal(signal.SIGHUP)
        log.wait_for("config_reloaded")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        loaded_from, *names = modules.read_text(encoding="utf-8").split()
        assert loaded_from == str(site / "supervisor" / "__init__.pyc")
        yield set(names)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        usb.close()


def library_modules(name: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", BLOCK_SSL + "before = set(sys.modules)\n"
                          f"import {name}\n" + "print('\\n'.join(n for n, m in sys.modules.items()"
                          " if m is not None and n not in before))"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return set(out.split())


def test_the_router_imports_neither_sdnotify_nor_jeepney_nor_pyudev(
        router_modules: set[str]) -> None:
    assert {"sdnotify", "jeepney", "pyudev"} & {m.split(".")[0] for m in router_modules} == set()


def test_the_package_depends_on_exactly_what_the_router_imports(
        router_modules: set[str]) -> None:
    assert depends(PACKAGE) == packages_of(router_modules)


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_each_library_package_depends_on_exactly_what_it_imports(library: str) -> None:
    needed = packages_of(library_modules(library)) - {MAP["third_party"][library]}
    assert depends(LIBRARIES[library]) == needed | {LIGHT}


# -- the libraries are the ones pyproject.toml asks for ------------------------------------------
@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_library_versions_meet_the_projects_bounds(library: str) -> None:
    makefile = LIBRARIES[library]
    assert variable(makefile, "PYPI_NAME") == library
    assert variable(makefile, "PKG_NAME") == f"python-{library}"
    assert re.fullmatch(r"[0-9a-f]{64}", variable(makefile, "PKG_HASH"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    bound = next(d for d in project["project"]["dependencies"] if d.startswith(f"{library}>="))
    version = tuple(int(p) for p in variable(makefile, "PKG_VERSION").split("."))
    assert version >= tuple(int(p) for p in bound.split(">=")[1].split("."))
    assert f"Package/python3-{library}" in makefile.read_text(encoding="utf-8")


# -- what the package installs -------------------------------------------------------------------
def installs(makefile: Path) -> dict[str, str]:
    """Installed path → where it comes from (relative to the checkout), from the install block."""
    found = {}
    for line in block(makefile, "Py3Package/printer-supervisor/install"):
        words = line.split()
        if words[0] in ("$(INSTALL_BIN)", "$(INSTALL_DATA)", "$(INSTALL_CONF)"):
            source, target = words[1], words[2]
            source = source.replace("$(PKG_BUILD_DIR)/", "").replace(
                "$(PKG_INSTALL_DIR)/usr/bin/", "scripts/")
            if target.endswith("/"):
                target += Path(source).name
            found[target.replace("$(1)", "")] = source
    return found


def test_every_installed_file_is_in_the_tree_and_prepare_copies_it() -> None:
    copied = {word.replace("$(PKG_SOURCE_TREE)/", "").rstrip("/")
              for line in block(PACKAGE, "Build/Prepare") for word in line.split()
              if word.startswith("$(PKG_SOURCE_TREE)/")}
    assert {"pyproject.toml", "README.md", "LICENSE", "supervisor", "scripts"} <= copied
    for source in installs(PACKAGE).values():
        assert (ROOT / source).is_file(), source
        assert source.split("/")[0] in copied, source


def test_the_package_agrees_with_the_init_script_and_the_configuration() -> None:
    installed = installs(PACKAGE)
    init = INIT.read_text(encoding="utf-8")
    assert installed["/etc/init.d/printer-supervisor"] == "units/openwrt/printer-supervisor.init"
    assert installed["/usr/bin/supervisorctl"] == "scripts/supervisorctl"
    assert "PROG=/usr/bin/supervisorctl" in init
    assert installed["/etc/config/printer-supervisor"] == (
        "units/openwrt/printer-supervisor.config")
    assert block(PACKAGE, "Package/printer-supervisor/conffiles") == [
        "/etc/config/printer-supervisor"]
    assert "CONFIG_UCI=/etc/config/printer-supervisor" in init
    assert installed["/etc/hotplug.d/usbmisc/30-printer-supervisor"] == (
        "rules/hotplug.d/usbmisc/30-printer-supervisor")
    assert installed["/usr/share/acl.d/printer-supervisor.json"] == (
        "units/openwrt/printer-supervisor.acl.json")
    assert installed["/lib/upgrade/keep.d/printer-supervisor"] == (
        "units/openwrt/printer-supervisor.keep")
    user, group = re.fullmatch(r"(\S+)=\d+:(\S+)=7", variable(PACKAGE, "USERID")).groups()  # type: ignore[union-attr]
    assert f"SUPERVISOR_USER={user}" in init and f"SUPERVISOR_GROUP={group}" in init
    assert json.loads(ACL.read_text(encoding="utf-8"))["user"] == user
    made = {line.split()[1].replace("$(1)", "") for line in
            block(PACKAGE, "Py3Package/printer-supervisor/install")
            if line.startswith("$(INSTALL_DIR)")}
    daemon = load_settings(UCI_CONFIG, required=True).daemon
    assert str(daemon.firmware_dirs[0]) in made  # the firmware directory the package owns
    assert "UMDNS_DIR=/etc/umdns" in init and "/etc/umdns" in made
    # The byte-code the router_modules fixture ran: -OO, legacy .pyc beside no sources.
    install = " ".join(block(PACKAGE, "Package/printer-supervisor/install"))
    assert "-OO -m compileall" in install and " -b " in install
    assert "Python3/DeleteSourceFiles" in install
