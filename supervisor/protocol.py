"""The control socket's wire protocol (SPEC §7), shared by the service and the thin client.

Kept free of heavy imports: `supervisorctl notify` loads this and little else.
"""

from __future__ import annotations

from typing import Final

VERSION: Final = 1
MAX_REQUEST_BYTES: Final = 64 * 1024
DEFAULT_SOCKET: Final = "/run/printer-supervisor/control.sock"
SOCKET_ENV: Final = "PRINTER_SUPERVISOR_SOCKET"

#: The variables a hotplug event may carry (SPEC §2); anything else is dropped, never sent.
HOTPLUG_KEYS: Final = (
    "ACTION", "DEVPATH", "SUBSYSTEM", "DEVTYPE", "PRODUCT", "TYPE", "INTERFACE", "DEVNAME",
    "DEVICENAME", "MAJOR", "MINOR", "BUSNUM", "DEVNUM", "SEQNUM", "DRIVER",
)
