"""The control socket's wire protocol (SPEC §7) and the paths the thin client needs.

Shared by the service and `supervisorctl`; free of heavy imports, because `notify` loads this
and little else.
"""

from __future__ import annotations

VERSION = 1
MAX_REQUEST_BYTES = 64 * 1024
DEFAULT_SOCKET = "/run/printer-supervisor/control.sock"
SOCKET_ENV = "PRINTER_SUPERVISOR_SOCKET"
DEFAULT_CONFIG = "/etc/printer-supervisor/config.toml"
DEFAULT_UCI = "/etc/config/printer-supervisor"  # OpenWrt's form; config.toml wins over it
CONFIG_ENV = "PRINTER_SUPERVISOR_CONFIG"

#: The variables a hotplug event may carry (SPEC §2); anything else is dropped, never sent.
HOTPLUG_KEYS = (
    "ACTION", "DEVPATH", "SUBSYSTEM", "DEVTYPE", "PRODUCT", "TYPE", "INTERFACE", "DEVNAME",
    "DEVICENAME", "MAJOR", "MINOR", "BUSNUM", "DEVNUM", "SEQNUM", "DRIVER",
)
