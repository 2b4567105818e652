"""The systemd unit: verified by systemd-analyze, and carrying what the service relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness import require_peer

UNIT = Path(__file__).resolve().parent.parent / "units" / "printer-supervisor.service"
INSTALLED_CTL = "/opt/printer-supervisor/bin/supervisorctl"


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require_peer("systemd-analyze", "systemd")
    # verify insists that ExecStart exists: point it at this checkout's command.
    unit = tmp_path / UNIT.name
    ctl = str(Path(sys.executable).parent / "supervisorctl")
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(INSTALLED_CTL, ctl),
                    encoding="utf-8")
    # --man=no: the pages of Documentation= are not installed here (tests/test_deb.py checks
    # them where they are).
    result = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_unit_has_what_the_service_relies_on() -> None:
    lines = {line.strip() for line in UNIT.read_text(encoding="utf-8").splitlines()}
    for expected in ("Type=notify", "WatchdogSec=30s", "Restart=on-failure",
                     "ExecReload=/bin/kill -HUP $MAINPID", "SupplementaryGroups=lp",
                     "RuntimeDirectory=printer-supervisor", "LogsDirectory=printer-supervisor",
                     "StateDirectory=printer-supervisor", "DevicePolicy=closed",
                     "DeviceAllow=char-usb rw", "PrivateDevices=no",
                     "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
                     f"ExecStart={INSTALLED_CTL} run --config "
                     "/etc/printer-supervisor/config.toml"):
        assert expected in lines, expected
    assert not any(line.startswith("PrivateNetwork") for line in lines)
