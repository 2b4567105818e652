"""OpenWrt's init script and hotplug shims, run as procd runs them, and the udev rules."""

from __future__ import annotations

import grp
import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import ServiceThread, require_peer

from supervisor.config.loader import load_settings
from supervisor.config.uciform import settings_to_uci
from supervisor.lab.virtual import FakeSysfs, VirtualUsbPrinter
from supervisor.publish.umdns import RELOAD

ROOT = Path(__file__).resolve().parent.parent
INIT = ROOT / "units" / "openwrt" / "printer-supervisor.init"
OPENWRT_CONFIG = ROOT / "units" / "openwrt" / "config.toml"
OPENWRT_UCI = ROOT / "units" / "openwrt" / "printer-supervisor.config"
USBMISC_SHIM = ROOT / "rules" / "hotplug.d" / "usbmisc" / "30-printer-supervisor"
UDEV_RULES = ROOT / "rules" / "70-printer-supervisor.rules"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "openwrt_hplj1018.json"
REAL_CTL = Path(sys.executable).parent / "supervisorctl"
INSTALLED_CTL = "/opt/printer-supervisor/bin/supervisorctl"
OPENWRT_CONFIG_PATH = "/etc/printer-supervisor/config.toml"
BLOB = b"\x1b%-12345X@PJL ENTER LANGUAGE=ACL\r\n" + os.urandom(50_000)
RETURNS_WITHIN_S = 10.0  # generous: only there so that a hanging shim cannot hang CI

# /bin/sh (dash on Debian), and busybox's ash, OpenWrt's /bin/sh, where it is installed.
SHELLS = [("/bin/sh",), ("busybox", "sh")]
SHELL_IDS = [" ".join(shell) for shell in SHELLS]

# A stand-in for supervisorctl: records its argv, environment and where stdin/stdout point.
RECORDER = """#!{python}
import json, os, stat, sys
null = os.stat("/dev/null")
def is_null(fd):
    st = os.fstat(fd)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev
record = {{"argv": sys.argv[1:], "env": dict(os.environ),
          "stdin_null": is_null(0), "stdout_null": is_null(1)}}
with open({calls!r}, "a", encoding="utf-8") as out:
    out.write(json.dumps(record) + "\\n")
"""
# A `logger` first in PATH: records what the shims send to syslog.
LOGGER = """#!/bin/sh
printf '%s\\n' "$*" >> '{path}'
"""
# supervisorctl when the service rejects the event: exit 2, the reason on stderr.
REJECTING_CTL = """#!/bin/sh
echo "this goes nowhere"
echo "supervisorctl notify: rejected: DEVNAME outside devfs" >&2
exit 2
"""


def load_fixture() -> dict[str, Any]:
    return dict(json.loads(FIXTURE.read_text(encoding="utf-8")))


def dispatched(sequence: str) -> list[tuple[Path, dict[str, str]]]:
    """The fixture's steps that reach a shim of ours: only usbmisc's (there is no usb one)."""
    return [(USBMISC_SHIM, dict(step["env"])) for step in load_fixture()[sequence]
            if step["dispatched_to"].startswith("/etc/hotplug.d/usbmisc/")]


def test_only_the_lp_node_events_start_an_interpreter() -> None:
    """Of the fixture's plug and unplug (12 events), the two usbmisc ones reach a shim; the
    usb_device and usb_interface events carry nothing the service's rescan of /sys lacks
    (test_shims_drive_the_real_service_through_plug_and_unplug shows it serving without them)."""
    shims = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "rules" / "hotplug.d")
                   .rglob("*") if p.is_file())
    assert shims == ["rules/hotplug.d/usbmisc/30-printer-supervisor"]
    fixture = load_fixture()
    assert (len(fixture["plug"]), len(fixture["unplug"])) == (6, 6)
    assert [(e["ACTION"], e["DEVNAME"]) for _, e in dispatched("plug") + dispatched("unplug")] \
        == [("add", "usb/lp0"), ("remove", "usb/lp0")]


def lp_gid() -> int | None:
    try:
        return grp.getgrnam("lp").gr_gid
    except KeyError:
        return None


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def quiet_success(self) -> bool:
        return (self.returncode, self.stdout, self.stderr) == (0, "", "")


class Router:
    """What procd's hotplug-call gives a handler, in a temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.devroot = root / "dev"
        self.calls_file = root / "calls.jsonl"
        self.logged_file = root / "logged.txt"
        self.bin = root / "bin"
        self.bin.mkdir()
        self.recorder = self.script("recorder", RECORDER.format(
            python=sys.executable, calls=str(self.calls_file)))
        self.script("bin/logger", LOGGER.format(path=self.logged_file))

    def script(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)
        return path

    def node(self, name: str = "usb/lp0", mode: int = 0o644) -> Path:
        """A device node as procd leaves it: root:root 0644 (a plain file stands in)."""
        path = self.devroot / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        path.chmod(mode)
        return path

    def run(self, shim: Path, event: Mapping[str, str], *, shell: tuple[str, ...] = SHELLS[0],
            ctl: Path | None = None, **extra: str) -> Ran:
        """Source `shim` in a subshell, as `hotplug-call` does, with the event's environment."""
        env = {"PATH": f"{self.bin}:/usr/sbin:/usr/bin:/sbin:/bin", "LOGNAME": "root",
               "USER": "root", **event,
               "PRINTER_SUPERVISOR_CTL": str(ctl or self.recorder),
               "PRINTER_SUPERVISOR_DEVROOT": str(self.devroot), **extra}
        started = time.monotonic()
        # stdin a pipe, as procd's is not /dev/null either: the shim must redirect it.
        result = subprocess.run([*shell, "-c", '( . "$0" )', str(shim)], env=env, input="",
                                capture_output=True, text=True, timeout=60, check=False)
        return Ran(result.returncode, result.stdout, result.stderr, time.monotonic() - started)

    def calls(self) -> list[dict[str, Any]]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text("utf-8").splitlines()]

    def logged(self) -> list[str]:
        if not self.logged_file.exists():
            return []
        return self.logged_file.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def router(tmp_path: Path) -> Router:
    return Router(tmp_path / "router")


def need_shell(shell: tuple[str, ...]) -> None:
    """busybox's ash is OpenWrt's /bin/sh: .ci/run installs it; locally it may be missing."""
    if shell[0] == "busybox":
        require_peer("busybox", "busybox")


# -- the shell files parse -----------------------------------------------------------------------
@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("path", [INIT, USBMISC_SHIM], ids=["init", "usbmisc-shim"])
def test_shell_files_parse(path: Path, shell: tuple[str, ...]) -> None:
    need_shell(shell)
    # The init script sources /etc/rc.common only at run time: -n just parses it.
    result = subprocess.run([*shell, "-n", str(path)], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert os.access(path, os.X_OK), f"{path} must be installed executable (like INSTALL_BIN)"


# -- the shims, sourced as hotplug-call sources them ---------------------------------------------
@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("sequence", ["plug", "unplug"])
def test_fixture_events_reach_notify_in_order_with_their_environment(
        router: Router, sequence: str, shell: tuple[str, ...]) -> None:
    need_shell(shell)
    steps = dispatched(sequence)
    assert len(steps) == 1
    node = router.node("usb/lp0")
    for shim, event in steps:
        ran = router.run(shim, event, shell=shell)
        assert ran.quiet_success, (shim.parent.name, event["ACTION"], ran)
    calls = router.calls()
    assert [c["env"]["SEQNUM"] for c in calls] == [event["SEQNUM"] for _, event in steps]
    for call, (_, event) in zip(calls, steps, strict=True):
        assert call["argv"] == ["notify"]
        assert event.items() <= call["env"].items()
        assert call["stdin_null"] and call["stdout_null"]
    assert router.logged() == []
    mode = stat.S_IMODE(node.stat().st_mode)
    if sequence == "plug":
        assert mode == 0o660
        gid = lp_gid()
        if gid is not None and os.geteuid() == 0:  # CI: root on Debian, where lp exists
            assert node.stat().st_gid == gid
    else:
        assert mode == 0o644  # only an add touches the node


IRRELEVANT = {
    "hiddev node": (USBMISC_SHIM, {"ACTION": "add", "SUBSYSTEM": "usbmisc",
                                   "DEVNAME": "usb/hiddev0", "DEVPATH": "/devices/x/hiddev0"}),
    "path trick": (USBMISC_SHIM, {"ACTION": "add", "SUBSYSTEM": "usbmisc",
                                  "DEVNAME": "usb/lp9/../hiddev0", "DEVPATH": "/devices/x"}),
    "lp node online": (USBMISC_SHIM, {"ACTION": "online", "SUBSYSTEM": "usbmisc",
                                      "DEVNAME": "usb/lp0", "DEVPATH": "/devices/x/lp0"}),
}


@pytest.mark.parametrize("case", list(IRRELEVANT))
def test_other_events_are_skipped_without_running_anything(router: Router, case: str) -> None:
    shim, event = IRRELEVANT[case]
    other = router.node("usb/hiddev0")
    (router.devroot / "usb" / "lp9").mkdir()  # so that usb/lp9/../hiddev0 would resolve
    ran = router.run(shim, event)
    assert ran.quiet_success, ran
    assert router.calls() == []
    assert stat.S_IMODE(other.stat().st_mode) == 0o644


def test_the_lp_node_is_fixed_only_when_it_is_a_real_node(router: Router, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.touch()
    elsewhere.chmod(0o644)
    (router.devroot / "usb").mkdir(parents=True)
    (router.devroot / "usb" / "lp1").symlink_to(elsewhere)
    for devname in ("usb/lp1", "usb/lp2"):  # a symlink; a node already gone
        ran = router.run(USBMISC_SHIM, {"ACTION": "add", "SUBSYSTEM": "usbmisc",
                                        "DEVNAME": devname, "DEVPATH": f"/devices/x/{devname}"})
        assert ran.quiet_success, ran
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o644
    assert [c["env"]["DEVNAME"] for c in router.calls()] == ["usb/lp1", "usb/lp2"]


@pytest.mark.parametrize("missing", ["absent", "not executable"])
def test_without_supervisorctl_the_shims_do_nothing_at_once(router: Router, missing: str) -> None:
    ctl = router.root / "nothing-here"
    if missing == "not executable":
        ctl = router.recorder
        ctl.chmod(0o644)
    node = router.node("usb/lp0")
    for shim, event in dispatched("plug"):
        ran = router.run(shim, event, ctl=ctl)
        assert ran.quiet_success, ran
        assert ran.seconds < RETURNS_WITHIN_S
    assert router.calls() == [] and router.logged() == []
    assert stat.S_IMODE(node.stat().st_mode) == 0o660  # the node is fixed all the same


def test_real_supervisorctl_without_a_service_returns_quietly(router: Router) -> None:
    assert REAL_CTL.exists(), f"{REAL_CTL}: install the package (pip install -e .)"
    nobody = router.root / "nobody.sock"
    for shim, event in dispatched("plug") + dispatched("unplug"):
        ran = router.run(shim, event, ctl=REAL_CTL, PRINTER_SUPERVISOR_SOCKET=str(nobody))
        assert ran.quiet_success, ran
        assert ran.seconds < RETURNS_WITHIN_S
    assert router.logged() == []  # exit 3 (not running) is expected at boot: not logged


def test_a_rejected_event_goes_to_syslog_and_nothing_is_printed(router: Router) -> None:
    shim = USBMISC_SHIM
    ctl = router.script("rejecting-ctl", REJECTING_CTL)
    event = next(event for target, event in dispatched("plug") if target == shim)
    ran = router.run(shim, event, ctl=ctl)
    assert ran.quiet_success, ran
    (line,) = router.logged()
    assert line.startswith("-t printer-supervisor -p daemon.err ")
    assert "exit 2" in line and "rejected: DEVNAME outside devfs" in line
    assert "this goes nowhere" not in line


def test_shims_drive_the_real_service_through_plug_and_unplug(
        router: Router, tmp_path: Path,
        start_service: Callable[..., ServiceThread]) -> None:
    """hotplug-call → shim → real `supervisorctl notify` → the running service (SPEC §8)."""
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "sihp1018.dl").write_bytes(BLOB)
    usb = VirtualUsbPrinter(FakeSysfs(tmp_path / "sys"), tmp_path / "dev", firmware=BLOB)
    control = str(tmp_path / "control.sock")

    def deliver(sequence: str) -> int:
        steps = dispatched(sequence)
        for shim, event in steps:
            ran = router.run(shim, event, ctl=REAL_CTL, PRINTER_SUPERVISOR_SOCKET=control,
                             PRINTER_SUPERVISOR_DEVROOT=str(tmp_path / "dev"))
            assert ran.quiet_success, ran
        return len(steps)

    try:
        service = start_service([{"name": "laserjet", "match": "3f0/4117/*", "port": 9101}])
        usb.plug()
        plugged = deliver("plug")
        service.log.wait_for("hotplug_received", count=plugged)
        service.log.wait_for("firmware_pushed", printer="laserjet")
        assert service.wait_state("laserjet", "ready")["port"] == 9101
        usb.unplug()
        unplugged = deliver("unplug")
        service.log.wait_for("hotplug_received", count=plugged + unplugged)
        service.wait_state("laserjet", "absent")
        assert router.logged() == []
    finally:
        usb.close()


# -- the init script, with procd's functions stubbed -----------------------------------------
PROCD_STUBS = """
procd_open_instance() { echo "procd_open_instance $*"; }
procd_set_param() { echo "procd_set_param $*"; }
procd_close_instance() { echo "procd_close_instance $*"; }
procd_send_signal() { echo "procd_send_signal $*"; }
procd_add_reload_trigger() { echo "procd_add_reload_trigger $*"; }
logger() { echo "logger $*"; }
. "$0"
echo "defaults $PROG $CONFIG_UCI $SUPERVISOR_USER $SUPERVISOR_GROUP $RUN_DIR $LOG_DIR $STATE_DIR"
PROG=$1 RUN_DIR=$2/run LOG_DIR=$2/log STATE_DIR=$2/etc/state SUPERVISOR_USER=$3
UMDNS_DIR=$2/etc/umdns UMDNS_INIT=$2/umdns.init
CONFIG_UCI=$2/etc/config/printer-supervisor CONFIG_TOML=$2/etc/printer-supervisor/config.toml
SUPERVISOR_GROUP=${4:-$(id -gn)}
start_service; echo "start_service returned $?"
reload_service
service_triggers
"""


def run_init(tmp_path: Path, user: str, config: str | None = "uci", *,
             prog: str = str(REAL_CTL), group: str = "",
             shell: tuple[str, ...] = ("/bin/sh",)) -> list[str]:
    """start_service, reload_service and service_triggers with procd's functions recording
    what they are asked to register; `config`: which configuration file exists."""
    if config is not None:
        made = (tmp_path / "etc" / "config" / "printer-supervisor" if config == "uci" else
                tmp_path / "etc" / "printer-supervisor" / "config.toml")
        made.parent.mkdir(parents=True, exist_ok=True)
        made.write_text("")
    umdns_init = tmp_path / "umdns.init"  # stands in for /etc/init.d/umdns
    umdns_init.write_text('#!/bin/sh\necho "umdns $*"\n', encoding="utf-8")
    umdns_init.chmod(0o755)
    result = subprocess.run([*shell, "-c", PROCD_STUBS, str(INIT), prog, str(tmp_path),
                             user, group], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 0, result.stderr
    return [line.rstrip() for line in result.stdout.splitlines()]


def test_init_script_runs_one_supervised_unprivileged_instance(tmp_path: Path) -> None:
    user = subprocess.check_output(["id", "-un"], text=True).strip()
    group = subprocess.check_output(["id", "-gn"], text=True).strip()
    lines = run_init(tmp_path, user=user)
    assert lines[0] == (f"defaults {INSTALLED_CTL} /etc/config/printer-supervisor "
                        "printer-supervisor lp /var/run/printer-supervisor "
                        "/var/log/printer-supervisor /etc/printer-supervisor/state")
    start = lines.index("procd_open_instance")
    end = lines.index("procd_close_instance")
    instance = lines[start + 1:end]
    uci = tmp_path / "etc" / "config" / "printer-supervisor"
    command = f"procd_set_param command {REAL_CTL} run --config {uci}"
    assert command in instance
    assert not any(line.startswith("procd_set_param error") for line in instance)
    assert "procd_set_param stderr 1" in instance
    assert f"procd_set_param user {user}" in instance
    assert f"procd_set_param group {group}" in instance
    respawn = next(line for line in instance if line.startswith("procd_set_param respawn "))
    threshold, timeout, retry = map(int, respawn.split()[2:])
    assert threshold > 0 and timeout > 0 and retry > 0  # 0 retries would mean "forever"
    term = next(line for line in instance if line.startswith("procd_set_param term_timeout "))
    assert int(term.split()[2]) > 10  # longer than the service's 10 s grace for a running job
    # umdns is restarted once, when its directory had to be made (its jail sees it only then)
    assert lines[start - 1] == "umdns restart"
    assert lines[end + 1:] == ["start_service returned 0",
                               "procd_send_signal printer-supervisor * HUP",
                               "procd_add_reload_trigger printer-supervisor"]
    for made in ("run", "log", "etc/state"):
        info = (tmp_path / made).stat()
        assert stat.S_IMODE(info.st_mode) == 0o750
        assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid())
    umdns = (tmp_path / "etc" / "umdns").stat()
    assert (stat.S_IMODE(umdns.st_mode), umdns.st_gid) == (0o1775, os.getgid())
    again = run_init(tmp_path, user=user)
    assert "umdns restart" not in again, "umdns is restarted only when its directory is new"


def test_openwrt_acl_lets_the_service_user_reload_umdns_and_nothing_else() -> None:
    acl = json.loads((ROOT / "units" / "openwrt" / "printer-supervisor.acl.json").read_text())
    defaults = run_defaults()
    assert acl["user"] == "printer-supervisor"
    assert "SUPERVISOR_USER=printer-supervisor" in INIT.read_text(encoding="utf-8")
    assert acl["access"] == {"umdns": {"methods": ["reload"]}}
    _call, obj, method = RELOAD  # what the service asks of ubus
    assert method in acl["access"][obj]["methods"]
    assert defaults["UMDNS_DIR"] == "/etc/umdns"


def test_config_toml_wins_over_uci_where_both_exist(tmp_path: Path) -> None:
    user = subprocess.check_output(["id", "-un"], text=True).strip()
    toml = tmp_path / "etc" / "printer-supervisor" / "config.toml"
    toml.parent.mkdir(parents=True)
    toml.write_text("")
    lines = run_init(tmp_path, user=user)  # the UCI file exists too
    assert f"procd_set_param command {REAL_CTL} run --config {toml}" in lines


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize(("case", "reason"), [
    ("user", "user no-such-user-here is missing"),
    ("binary", "is missing: install the printer-supervisor package"),
    ("group", "group no-such-group-here is missing"),
    ("config", "no configuration: "),
    ("dirs", "cannot prepare "),
])
def test_a_failed_check_registers_an_instance_with_its_error(
        tmp_path: Path, case: str, reason: str, shell: tuple[str, ...]) -> None:
    """procd does not start an instance that carries an error, and lists it under "errors"
    (`ubus call service list`): the failure is visible, not "active with no instances"."""
    need_shell(shell)
    user = subprocess.check_output(["id", "-un"], text=True).strip()
    prog, group = str(REAL_CTL), ""
    if case == "user":
        user = "no-such-user-here"
    elif case == "binary":
        prog = str(tmp_path / "no-such-supervisorctl")
    elif case == "group":
        group = "no-such-group-here"
    elif case == "dirs":
        (tmp_path / "run").write_text("a file where a directory must be")
    lines = run_init(tmp_path, user=user, config=None if case == "config" else "uci",
                     prog=prog, group=group, shell=shell)
    start = lines.index("procd_open_instance")
    end = lines.index("procd_close_instance")
    instance = lines[start + 1:end]
    assert len(instance) == 1 and instance[0].startswith("procd_set_param error ")
    assert reason in instance[0]
    assert not any(line.startswith("procd_set_param command") for line in lines)
    assert "start_service returned 1" in lines
    assert any(line.startswith("logger ") and reason in line for line in lines)


# rc.common's start and status (OpenWrt base-files, procd services), calling the script's hooks
# as they do; procd's _procd_status, ubus and jsonfilter answer as on a router after that start:
# the instance registered with its error, not running (openwrt.md §3; procd's instance_dump puts
# an instance's errors at SERVICE.instances.NAME.errors).
RC_COMMON = """
procd_open_service() { :; }
procd_close_service() { :; }
procd_open_instance() { :; }
procd_set_param() { [ "$1" = error ] && shift && echo "$*" > "$WORK/error"; return 0; }
procd_close_instance() { :; }
logger() { :; }
_procd_status() {
    if [ -s "$WORK/error" ]; then echo "not running"; return 5; fi
    echo "running"
}
ubus() {
    [ "$*" = 'call service list {"name":"printer-supervisor"}' ] || return 4
    reason=$(cat "$WORK/error")
    printf '{"printer-supervisor":{"instances":{"instance1":{"running":false,"command":[],'
    printf '"term_timeout":15,"errors":["%s"]}}}}\n' "$reason"
}
jsonfilter() { "$PYTHON" "$WORK/jsonfilter.py" "$@"; }
. "$0"
PROG=$1 RUN_DIR=$WORK/run LOG_DIR=$WORK/log STATE_DIR=$WORK/state SUPERVISOR_USER=$2
SUPERVISOR_GROUP=$(id -gn) UMDNS_DIR=$WORK/umdns UMDNS_INIT=$WORK/none
CONFIG_UCI=$WORK/printer-supervisor CONFIG_TOML=$WORK/config.toml
rc_procd() { procd_open_service; "$@"; procd_close_service; }
start() {
    rc_procd start_service "$@"
    if eval "type service_started" 2>/dev/null >/dev/null; then service_started; fi
}
status() {
    if eval "type status_service" 2>/dev/null >/dev/null; then status_service "$@"
    else _procd_status printer-supervisor "$1"; fi
}
"$3"
"""
# jsonfilter for the one expression the script may use: anything else is an error, as a wrong
# path would print nothing on a router.
JSONFILTER = """
import json, sys
assert sys.argv[1:] == ["-e", '@["printer-supervisor"].instances[*].errors[*]'], sys.argv
for instance in json.load(sys.stdin)["printer-supervisor"]["instances"].values():
    for error in instance.get("errors", []):
        print(error)
"""


def rc_common(tmp_path: Path, action: str, user: str, shell: tuple[str, ...]
              ) -> subprocess.CompletedProcess[str]:
    (tmp_path / "jsonfilter.py").write_text(JSONFILTER, encoding="utf-8")
    (tmp_path / "printer-supervisor").write_text("", encoding="utf-8")
    return subprocess.run([*shell, "-c", RC_COMMON, str(INIT), str(REAL_CTL), user, action],
                          capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "WORK": str(tmp_path), "PYTHON": sys.executable})


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_a_failed_check_fails_start_and_status_says_why(tmp_path: Path,
                                                        shell: tuple[str, ...]) -> None:
    """Upstream, start exits 0 and status prints only "not running" after a failed check."""
    need_shell(shell)
    started = rc_common(tmp_path, "start", "no-such-user-here", shell)
    assert started.returncode == 1
    status = rc_common(tmp_path, "status", "no-such-user-here", shell)
    assert status.returncode == 5
    assert status.stdout.splitlines() == [
        "not running", "error: user no-such-user-here is missing: reinstall the package"]


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_a_good_start_exits_0_and_status_is_procds(tmp_path: Path,
                                                   shell: tuple[str, ...]) -> None:
    need_shell(shell)
    user = subprocess.check_output(["id", "-un"], text=True).strip()
    started = rc_common(tmp_path, "start", user, shell)
    assert started.returncode == 0, started.stderr
    status = rc_common(tmp_path, "status", user, shell)
    assert (status.returncode, status.stdout) == (0, "running\n")


def test_docs_say_reload_config_after_uci_commit_and_umdns_announcements() -> None:
    """uci talks to no one: procd's config.change trigger fires on reload_config (openwrt.md
    §2); umdns's browse never lists the router's own services (§4)."""
    texts = {path: path.read_text(encoding="utf-8") for path in (
        ROOT / "README.md", OPENWRT_UCI, INIT, ROOT / "man" / "printer-supervisor.conf.5.rst")}
    for path, text in texts.items():
        for line in text.splitlines():
            if re.match(r"^[#\s]*uci commit printer-supervisor", line):  # a command to type
                assert re.search(r"&& (reload_config|/etc/init.d/printer-supervisor re)", line), (
                    f"{path.name}: {line.strip()}")
            assert "umdns browse` (OpenWrt)" not in line
        assert "reloads by itself" not in text and "`uci commit` reloads" not in text
        assert "printer-supervisor reload``, uci commit" not in text
    assert "ubus call umdns announcements" in texts[ROOT / "README.md"]
    written = settings_to_uci(load_settings(OPENWRT_UCI, required=True))  # migrate-p910nd's
    assert "uci commit printer-supervisor && reload_config" in written.splitlines()[0]


# -- the OpenWrt default config ------------------------------------------------------------------
def test_openwrt_config_is_valid_and_matches_the_init_script() -> None:
    daemon = load_settings(OPENWRT_CONFIG, required=True).daemon
    assert daemon.log_max_bytes > 0  # /var/log is tmpfs there, with no logrotate
    assert daemon.event_source == "none"  # the hotplug shims feed it
    defaults = run_defaults()
    assert str(daemon.control_socket.parent) == defaults["RUN_DIR"]
    assert daemon.log_file is not None and str(daemon.log_file.parent) == defaults["LOG_DIR"]
    assert str(daemon.state_dir) == defaults["STATE_DIR"]
    assert not str(daemon.state_dir).startswith(("/var/", "/tmp/"))  # on flash: survives reboot
    assert defaults["CONFIG_TOML"] == "/etc/printer-supervisor/config.toml"
    assert defaults["CONFIG_UCI"] == "/etc/config/printer-supervisor"
    uci = load_settings(OPENWRT_UCI, required=True)
    assert uci.daemon == daemon and uci.printers == () and uci.warnings == ()
    # Both run the package's command, else the one of a manual install, in that order.
    commands = re.compile(r"(/usr/bin/supervisorctl|/opt/printer-supervisor/bin/supervisorctl)")
    for script in (INIT, USBMISC_SHIM):
        code = "\n".join(line for line in script.read_text("utf-8").splitlines()
                         if not line.lstrip().startswith("#"))
        assert commands.findall(code) == [
            "/usr/bin/supervisorctl", "/opt/printer-supervisor/bin/supervisorctl"], script.name
    assert defaults["PROG"] in commands.pattern


KEEP = ROOT / "units" / "openwrt" / "printer-supervisor.keep"


def test_openwrt_keep_list_keeps_the_ports_and_the_firmware_across_a_sysupgrade() -> None:
    """/lib/upgrade/keep.d/printer-supervisor (the feed Makefile installs the .keep file there):
    sysupgrade saves the files under each path it lists, as for fastd's or gnunet's."""
    kept = [line for line in KEEP.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert kept and all(line.startswith("/") and line == line.strip() for line in kept)

    def is_kept(path: Path) -> bool:
        return any(path == Path(k) or Path(k) in path.parents for k in kept)

    for config in (OPENWRT_CONFIG, OPENWRT_UCI):
        daemon = load_settings(config, required=True).daemon
        # The remembered ports: on flash (/var and /tmp are RAM on OpenWrt), and kept.
        assert not str(daemon.state_dir).startswith(("/var/", "/tmp/"))
        assert is_kept(daemon.state_dir), (config.name, daemon.state_dir, kept)
        # The firmware directory the package owns: first searched, and kept.
        assert is_kept(daemon.firmware_dirs[0]), (config.name, daemon.firmware_dirs, kept)
    assert is_kept(Path(OPENWRT_CONFIG_PATH))  # a config.toml the user wrote instead of UCI
    assert is_kept(Path(run_defaults()["STATE_DIR"]))


def run_defaults() -> dict[str, str]:
    names = ("PROG", "CONFIG_TOML", "CONFIG_UCI", "RUN_DIR", "LOG_DIR", "STATE_DIR",
             "UMDNS_DIR")
    out = subprocess.run(["/bin/sh", "-c", '. "$0"; ' + "; ".join(
        f'echo "{n}=${n}"' for n in names), str(INIT)], capture_output=True, text=True,
        timeout=30, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


# -- the udev rules ------------------------------------------------------------------------------
TOKEN = re.compile(r'([A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"')


def udev_rules() -> Iterator[list[tuple[str, str, str]]]:
    text = UDEV_RULES.read_text(encoding="utf-8").replace("\\\n", "")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tokens = []
        for part in line.split(","):
            token = TOKEN.fullmatch(part.strip())
            assert token, f"{UDEV_RULES.name}:{number}: {part.strip()!r} is not KEY op \"value\""
            tokens.append((token[1], token[2], token[3]))
        yield tokens


def test_udev_rules_set_group_mode_and_tag_lp_nodes_and_run_nothing() -> None:
    rules = list(udev_rules())
    assert rules
    keys = {key for rule in rules for key, _, _ in rule}
    assert not {key for key in keys if key.startswith(("RUN", "PROGRAM", "IMPORT"))}
    lp_assignments = {
        (key, op, value) for rule in rules
        if ("SUBSYSTEM", "==", "usbmisc") in rule and ("KERNEL", "==", "lp*") in rule
        for key, op, value in rule if op not in ("==", "!=")}
    assert lp_assignments >= {("GROUP", "=", "lp"), ("MODE", "=", "0660"),
                              ("TAG", "+=", "systemd"),
                              ("ENV{SYSTEMD_WANTS}", "+=", "printer-supervisor.service")}
    assert (ROOT / "units" / "printer-supervisor.service").exists()  # the unit it wants
