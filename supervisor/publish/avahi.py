"""avahi-daemon over its D-Bus API (jeepney): one EntryGroup per announced printer.

avahi frees the groups of a client whose bus connection goes away, so a SIGKILLed service is
withdrawn without doing anything; after an avahi restart (NameOwnerChanged) everything is
registered again. On a bus avahi is not on, the connection stays open and that same signal
says when it comes: nothing is polled. Name clashes, local (AddService's CollisionError) or
with another host (the group's StateChanged COLLISION), are resolved with avahi's alternative
name ("… #2").
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import os
import socket
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from jeepney import DBusAddress, HeaderFields, Message, MessageType, new_method_call
from jeepney.bus import find_system_bus
from jeepney.bus_messages import MatchRule
from jeepney.io.asyncio import DBusConnection, open_dbus_connection

from supervisor.core.announce import SERVICE_TYPE, Announcement
from supervisor.publish.responder import Report, ResponderLost, Unavailable, Watching

AVAHI: Final = "org.freedesktop.Avahi"
SERVER: Final = DBusAddress("/", AVAHI, "org.freedesktop.Avahi.Server")
GROUP_INTERFACE: Final = "org.freedesktop.Avahi.EntryGroup"
BUS: Final = DBusAddress("/org/freedesktop/DBus", "org.freedesktop.DBus", "org.freedesktop.DBus")
COLLISION_ERROR: Final = "org.freedesktop.Avahi.CollisionError"
CONNECT_TIMEOUT_S: Final = 5.0
CALL_TIMEOUT_S: Final = 5.0
MAX_RENAMES: Final = 20  # alternative names tried before a printer is left unannounced
# avahi-common/defs.h
IF_UNSPEC: Final = -1
PROTO_UNSPEC, PROTO_INET, PROTO_INET6 = -1, 0, 1
GROUP_ESTABLISHED, GROUP_COLLISION, GROUP_FAILURE = 2, 3, 4
SIOCGIFADDR: Final = 0x8915


class BusError(Exception):
    """An error reply: `name` is the D-Bus error name."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{name}: {text}" if text else name)
        self.name = name


class _Bus:
    """One system-bus connection: method calls matched to their replies; signals handed on."""

    def __init__(self, conn: DBusConnection, on_signal: Callable[[Message], None],
                 on_closed: Callable[[], None]) -> None:
        self._conn = conn
        self._on_signal = on_signal
        self._on_closed = on_closed
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._reader = asyncio.create_task(self._read(), name="dbus-reader")

    async def call(self, address: DBusAddress, method: str, signature: str | None = None,
                   body: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        if self._reader.done():
            raise ResponderLost("the system bus closed the connection")
        message = new_method_call(address, method, signature, body)
        serial = next(self._conn.outgoing_serial)
        reply: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[serial] = reply
        try:
            await self._conn.send(message, serial=serial)
            async with asyncio.timeout(CALL_TIMEOUT_S):
                answer = await reply
        except (OSError, TimeoutError, EOFError) as exc:
            raise ResponderLost(f"the system bus did not answer {method}: {exc!r}") from exc
        finally:
            self._pending.pop(serial, None)
        if answer.header.message_type is MessageType.error:
            text = answer.body[0] if answer.body and isinstance(answer.body[0], str) else ""
            raise BusError(str(answer.header.fields.get(HeaderFields.error_name, "?")), text)
        return tuple(answer.body)

    async def _read(self) -> None:
        try:
            while True:
                message = await self._conn.receive()
                kind = message.header.message_type
                if kind is MessageType.signal:
                    self._on_signal(message)
                elif kind in (MessageType.method_return, MessageType.error):
                    serial = message.header.fields.get(HeaderFields.reply_serial)
                    waiting = self._pending.get(serial) if isinstance(serial, int) else None
                    if waiting is not None and not waiting.done():
                        waiting.set_result(message)
        except (EOFError, OSError):
            pass
        finally:
            for waiting in self._pending.values():
                if not waiting.done():
                    waiting.set_exception(EOFError("the system bus closed the connection"))
            self._on_closed()

    async def close(self) -> None:
        self._on_closed = _nothing  # hung up on purpose: no one is to hear of a lost bus
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        with contextlib.suppress(OSError):
            await self._conn.close()


def _nothing() -> None:
    pass


@dataclass
class _Group:
    """A printer's EntryGroup: what it should show, and the name it holds now."""

    path: str
    wanted: Announcement
    name: str
    established: bool = False


@dataclass(frozen=True)
class OwnerChanged:
    """avahi-daemon left the bus (`present` False) or came (back; `replaced`: in one step
    from another owner)."""

    present: bool
    replaced: bool = False


@dataclass(frozen=True)
class GroupState:
    path: str
    state: int
    error: str


class Avahi:
    """The responder of Debian and most Linux hosts."""

    kind: Final = "avahi"

    def __init__(self, report: Report, events: asyncio.Queue[object],
                 bind: Sequence[str]) -> None:
        self.host = ""
        self._report = report
        self._events = events
        self._interfaces = avahi_interfaces(bind)
        self._bus: _Bus | None = None
        self._groups: dict[str, _Group] = {}  # printer → group
        self._present = False

    # -- connection --------------------------------------------------------------------------
    async def connect(self) -> None:
        """Reach avahi-daemon on the system bus, or raise Unavailable saying why not: Watching
        when the bus is there and avahi not, the connection kept to hear when it comes."""
        address = find_system_bus()
        if not os.path.exists(address):
            raise Unavailable(f"no system bus at {address}")
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                conn = await open_dbus_connection("SYSTEM")
        except (OSError, TimeoutError, EOFError) as exc:
            raise Unavailable(f"cannot connect to the system bus at {address}: {exc}") from None
        self._bus = _Bus(conn, self._signal, self._closed)
        try:
            await self._subscribe()  # first: avahi coming meanwhile is heard
            (present,) = await self._bus.call(BUS, "NameHasOwner", "s", (AVAHI,))
            if present:
                (self.host,) = await self._bus.call(SERVER, "GetHostName")
        except (BusError, ResponderLost) as exc:
            await self._bus.close()
            self._bus = None
            raise Unavailable(str(exc)) from None
        if not present:
            raise Watching("avahi-daemon is not on the system bus; announcing when it comes")
        self._present = True

    async def _subscribe(self) -> None:
        assert self._bus is not None
        owner = MatchRule(type="signal", sender="org.freedesktop.DBus",
                          interface="org.freedesktop.DBus", member="NameOwnerChanged")
        owner.add_arg_condition(0, AVAHI)
        # Our own filter is by interface, not sender: signals carry avahi's unique name.
        groups = MatchRule(type="signal", sender=AVAHI, interface=GROUP_INTERFACE,
                           member="StateChanged")
        for rule in (owner, groups):
            await self._bus.call(BUS, "AddMatch", "s", (rule.serialise(),))

    def _signal(self, message: Message) -> None:
        fields = message.header.fields
        member, interface = fields.get(HeaderFields.member), fields.get(HeaderFields.interface)
        if member == "NameOwnerChanged" and message.body and message.body[0] == AVAHI:
            self._events.put_nowait(OwnerChanged(present=bool(message.body[2]),
                                                 replaced=bool(message.body[1])))
        elif member == "StateChanged" and interface == GROUP_INTERFACE:
            self._events.put_nowait(GroupState(str(fields.get(HeaderFields.path)),
                                               int(message.body[0]), str(message.body[1])))

    def _closed(self) -> None:
        self._events.put_nowait(ResponderLost("the system bus closed the connection"))

    async def close(self, reason: str) -> None:
        """Withdraw everything (Free each group) and hang up."""
        if self._bus is None:
            return
        for printer in list(self._groups):
            await self._withdraw(printer, reason)
        await self._bus.close()
        self._bus = None

    # -- what the announcer asks -------------------------------------------------------------
    async def apply(self, wanted: Mapping[str, Announcement]) -> None:
        """Make avahi show exactly `wanted`: free what went, (re)register what is new."""
        if not self._present:
            return
        for printer in [p for p in self._groups if p not in wanted]:
            await self._withdraw(printer, "no longer ready")
        for printer, announcement in wanted.items():
            group = self._groups.get(printer)
            if group is not None and group.wanted == announcement:
                continue
            try:
                await self._register(announcement, group)
            except BusError as exc:
                self._report.failed(printer, str(exc))

    async def handle(self, event: object) -> bool:
        """A signal from the bus; True when everything must be registered again."""
        if isinstance(event, OwnerChanged):
            if not event.present:
                self._present = False
                for group in self._groups.values():
                    self._report.withdrawn(group.wanted.printer, group.name,
                                           "avahi-daemon stopped")
                self._groups.clear()
                self._report.unavailable(["avahi: avahi-daemon left the system bus; waiting "
                                          "for it to come back"])
                return False
            if self._present and not event.replaced:
                return False  # its coming, seen by connect() already
            assert self._bus is not None
            self._groups.clear()  # whatever we held belonged to the avahi that left
            (self.host,) = await self._bus.call(SERVER, "GetHostName")
            self._present = True
            self._report.available(self.kind, self.host)
            return True
        if isinstance(event, GroupState):
            await self._group_state(event)
        return False

    async def _group_state(self, event: GroupState) -> None:
        group = next((g for g in self._groups.values() if g.path == event.path), None)
        if group is None:
            return
        printer = group.wanted.printer
        if event.state == GROUP_ESTABLISHED and not group.established:
            group.established = True
            self._report.announced(printer, group.name, group.wanted)
        elif event.state == GROUP_COLLISION:  # another host holds the name
            await self._register(group.wanted, group, clash=True)
        elif event.state == GROUP_FAILURE:
            self._report.failed(printer, event.error or "avahi gave up on the name")

    # -- groups ------------------------------------------------------------------------------
    async def _register(self, announcement: Announcement, group: _Group | None, *,
                        clash: bool = False) -> None:
        assert self._bus is not None
        printer = announcement.printer
        if group is None:
            (path,) = await self._bus.call(SERVER, "EntryGroupNew")
            group = _Group(str(path), announcement, announcement.name)
            self._groups[printer] = group
        else:
            await self._bus.call(self._group(group), "Reset")
            if group.established and not clash:
                self._report.withdrawn(printer, group.name, "changed")
            group.established = False
            # A name avahi renamed us to stays ours while the wanted name is the same.
            if group.wanted.name != announcement.name:
                group.name = announcement.name
            group.wanted = announcement
        if clash:
            await self._rename(group)
        for _ in range(MAX_RENAMES):
            try:
                for interface, protocol in self._interfaces:
                    await self._bus.call(
                        self._group(group), "AddService", "iiussssqaay",
                        (interface, protocol, 0, group.name, SERVICE_TYPE, "", "",
                         announcement.port, [s.encode("utf-8") for s in announcement.txt]))
                break
            except BusError as exc:
                if exc.name != COLLISION_ERROR:
                    raise
                await self._bus.call(self._group(group), "Reset")
                await self._rename(group)
        else:
            raise BusError(COLLISION_ERROR, f"no free name after {MAX_RENAMES} tries")
        await self._bus.call(self._group(group), "Commit")

    async def _rename(self, group: _Group) -> None:
        assert self._bus is not None
        (alternative,) = await self._bus.call(SERVER, "GetAlternativeServiceName", "s",
                                              (group.name,))
        self._report.collision(group.wanted.printer, group.name, str(alternative))
        group.name = str(alternative)

    async def _withdraw(self, printer: str, reason: str) -> None:
        group = self._groups.pop(printer)
        assert self._bus is not None
        # avahi restarted meanwhile, or the bus went: the group is gone already.
        with contextlib.suppress(BusError, ResponderLost):
            await self._bus.call(self._group(group), "Free")
        self._report.withdrawn(printer, group.name if group.established else None, reason)

    @staticmethod
    def _group(group: _Group) -> DBusAddress:
        return DBusAddress(group.path, AVAHI, GROUP_INTERFACE)


# -- where to announce -------------------------------------------------------------------------
def avahi_interfaces(bind: Sequence[str]) -> list[tuple[int, int]]:
    """(interface index, protocol) pairs to announce on: where the forwarder listens.

    "::" is every interface over both protocols, "0.0.0.0" every interface over IPv4; a
    specific address is its interface (every interface if it is on none now); loopback none.
    """
    pairs: list[tuple[int, int]] = []
    for text in bind:
        address = ipaddress.ip_address(text)
        if address.is_loopback:
            continue
        proto = PROTO_INET6 if address.version == 6 else PROTO_INET
        if address.is_unspecified:
            pair = (IF_UNSPEC, PROTO_UNSPEC if proto == PROTO_INET6 else PROTO_INET)
        else:
            pair = (interface_of(address) or IF_UNSPEC, proto)
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def interface_of(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int | None:
    """The index of the interface holding `address` now, or None."""
    if address.version == 6:
        try:
            with open("/proc/net/if_inet6", encoding="ascii") as table:
                for line in table:
                    fields = line.split()
                    if len(fields) >= 2 and int(fields[0], 16) == int(address):
                        return int(fields[1], 16)
        except (OSError, ValueError):
            return None
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for index, name in socket.if_nameindex():
            try:
                answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR,
                                     struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            if answer[20:24] == address.packed:
                return index
    return None
