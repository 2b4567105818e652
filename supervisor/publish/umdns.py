"""umdns (OpenWrt): one JSON file in /etc/umdns, then `ubus call umdns reload`.

umdns has no call to add or remove one service: it re-reads every file in /etc/umdns on
`reload`, announcing what is new and sending goodbyes for what went. So the file always holds
every printer that should be announced (written atomically; removed when there is none), and
each service id carries a digest of its record, because umdns re-announces a changed record
only under a new id. A killed service leaves its file until it starts again (it rewrites it).
"""

from __future__ import annotations

import asyncio
import binascii
import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from supervisor.core.announce import SERVICE_TYPE, Announcement
from supervisor.publish.responder import Report, ResponderLost, Unavailable

UMDNS_DIR: Final = Path("/etc/umdns")
FILE_NAME: Final = "printer-supervisor.json"
UBUS_TIMEOUT_S: Final = 5  # ubus's own -t, in seconds
#: What a router's ubus ACL (units/openwrt/printer-supervisor.acl.json) must allow.
RELOAD: Final = ("call", "umdns", "reload")


class Umdns:
    """The responder of OpenWrt."""

    kind: Final = "umdns"

    def __init__(self, report: Report, directory: Path = UMDNS_DIR) -> None:
        self.host = ""
        self._report = report
        self._path = directory / FILE_NAME
        self._temp = directory / f".{FILE_NAME}.tmp"  # umdns's glob skips dot files
        self._ubus: str | None = None
        self._shown: dict[str, Announcement] = {}
        self._written: dict[str, Any] | None = None

    async def connect(self) -> None:
        self._ubus = which("ubus")
        if self._ubus is None:
            raise Unavailable("no ubus command (not OpenWrt?)")
        if not self._path.parent.is_dir():
            raise Unavailable(f"{self._path.parent} does not exist (it must, before umdns "
                              "starts: mkdir it and restart umdns)")
        code, output = await self._run("list", "umdns")
        if code != 0:
            raise Unavailable(f"`ubus list umdns` failed ({output or f'exit {code}'}): "
                              "umdns is not running")
        self.host = socket.gethostname()

    async def apply(self, wanted: Mapping[str, Announcement]) -> None:
        document = {service_id(a): service_entry(a) for a in wanted.values()}
        if document == self._written:
            return
        try:
            await asyncio.to_thread(self._write, document)
        except OSError as exc:
            for printer in wanted:
                self._report.failed(printer, f"cannot write {self._path}: {exc.strerror}")
            return
        self._written = document
        code, output = await self._run(*RELOAD)
        if code != 0:
            raise ResponderLost(f"`ubus call umdns reload` failed ({output or f'exit {code}'})")
        self._settle(wanted, "no longer ready")

    def _settle(self, wanted: Mapping[str, Announcement], reason: str) -> None:
        """Report what the reload changed: umdns announces new ids and says goodbye to gone."""
        for printer, shown in list(self._shown.items()):
            if wanted.get(printer) != shown:
                del self._shown[printer]
                self._report.withdrawn(printer, shown.name,
                                       "changed" if printer in wanted else reason)
        for printer, announcement in wanted.items():
            if printer not in self._shown:
                self._shown[printer] = announcement
                self._report.announced(printer, announcement.name, announcement)

    async def handle(self, event: object) -> bool:
        return False  # umdns sends nothing back

    async def close(self, reason: str) -> None:
        if self._written == {} or self._ubus is None:
            return
        try:
            await asyncio.to_thread(self._write, {})
            self._written = {}
            await self._run(*RELOAD)
        except OSError as exc:
            self._report.failed("*", f"cannot remove {self._path}: {exc.strerror}")
            return
        self._settle({}, reason)

    def _write(self, document: Mapping[str, Any]) -> None:
        if not document:
            self._path.unlink(missing_ok=True)
            return
        with open(self._temp, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1, ensure_ascii=False)
            handle.write("\n")
        os.chmod(self._temp, 0o644)  # umdns runs as another user in its jail
        os.replace(self._temp, self._path)

    async def _run(self, *args: str) -> tuple[int, str]:
        assert self._ubus is not None
        try:
            proc = await asyncio.create_subprocess_exec(
                self._ubus, "-t", str(UBUS_TIMEOUT_S), *args, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            async with asyncio.timeout(UBUS_TIMEOUT_S + 5):
                output, _ = await proc.communicate()
        except (OSError, TimeoutError) as exc:
            return -1, repr(exc)
        assert proc.returncode is not None
        return proc.returncode, output.decode("utf-8", errors="replace").strip()


def service_id(announcement: Announcement) -> str:
    """`printer-supervisor_<printer>_<digest>`: unique per printer, new when the record is."""
    record = json.dumps(service_entry(announcement), sort_keys=True).encode("utf-8")
    return f"printer-supervisor_{announcement.printer}_{binascii.crc32(record):08x}"


def service_entry(announcement: Announcement) -> dict[str, Any]:
    return {"service": f"{SERVICE_TYPE}.local", "port": announcement.port,
            "instance": announcement.name, "txt": list(announcement.txt)}


def which(command: str) -> str | None:
    """The command's path on $PATH, as shutil.which finds it (shutil costs a router 0.6 MiB)."""
    for directory in os.get_exec_path():
        path = os.path.join(directory, command)
        if os.access(path, os.X_OK) and os.path.isfile(path):
            return path
    return None
