"""Synthetic uevents for the real pyudev Monitor, inside a private network namespace.

Netlink uevent broadcasts stay inside the network namespace of the sending socket, so a
`NetnsThread` (a thread that has unshared its network namespace) creates both the sender and the
Monitor; nothing else on the machine sees the fake events. Two wire formats:

- source "udev" (group 2): what systemd-udevd sends, a 40-byte `libudev` header then `KEY=VALUE\\0`
  properties (`send_udev_event`);
- source "kernel" (group 1): libudev only trusts group-1 messages from port 0 (the kernel), so the
  event is sent unicast to the kernel, which re-broadcasts it to group 1 of the sender's namespace
  with its own SEQNUM (Linux >= 4.18, `send_kernel_event`).

A namespace created by root belongs to the initial user namespace, so real kernel uevents
(group 1) still reach a "kernel" monitor in it; only the "udev" source is fully private.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import queue
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

import pyudev

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
NETLINK_KOBJECT_UEVENT = 15
GROUP_KERNEL = 1
GROUP_UDEV = 2

UDEV_PREFIX = b"libudev\0"
UDEV_MAGIC = 0xFEEDCAFE
UDEV_HEADER_SIZE = 40

NLMSG_HDR = struct.Struct("=IHHII")  # nlmsg_len, nlmsg_type, nlmsg_flags, nlmsg_seq, nlmsg_pid
NLMSG_ERROR = 0x2
NLMSG_MIN_TYPE = 0x10
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
ACK_TIMEOUT_S = 5.0

DEFAULT_SUBSYSTEMS: tuple[tuple[str, str | None], ...] = (("usb", None), ("usbmisc", None))


class NetnsThread:
    """A thread in its own network namespace that runs the callables given to `call`.

    Sockets created by those callables (a sender, `pyudev.Monitor.from_netlink`) belong to the
    private namespace and stay there, whichever thread uses them later. Needs CAP_SYS_ADMIN:
    the constructor raises OSError (with the errno's message) when `unshare` fails.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(started,), name="netns",
                                        daemon=True)
        self._thread.start()
        started.result()

    def __enter__(self) -> NetnsThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(self, fn: Callable[[], T], timeout_s: float = 30.0) -> T:
        """Run `fn` in the namespace's thread; return its result or raise its exception."""
        if not self._thread.is_alive():
            raise RuntimeError("NetnsThread is closed")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def job() -> None:
            try:
                future.set_result(fn())
            except BaseException as error:  # handed to the caller
                future.set_exception(error)

        self._jobs.put(job)
        return future.result(timeout_s)

    def close(self) -> None:
        """Stop the thread; the namespace lives on while sockets created in it are open."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def _run(self, started: concurrent.futures.Future[None]) -> None:
        try:
            unshare(CLONE_NEWNET)
        except OSError as error:
            started.set_exception(error)
            return
        started.set_result(None)
        while (job := self._jobs.get()) is not None:
            job()


def unshare(flags: int) -> None:
    """unshare(2) for the calling thread (Python 3.11 has no os.unshare)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare({flags:#x}): {os.strerror(err)}")


def _uevent_socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_KOBJECT_UEVENT)
    try:
        sock.bind((0, 0))
    except OSError:
        sock.close()
        raise
    return sock


def udev_sender() -> socket.socket:
    """A socket for `send_udev_event`; create it inside the namespace (`netns.call`)."""
    return _uevent_socket()


def kernel_sender() -> socket.socket:
    """A socket for `send_kernel_event`; create it inside the namespace (`netns.call`)."""
    return _uevent_socket()


def murmur_hash2(data: bytes, seed: int = 0) -> int:
    """MurmurHash2 (32 bits), as systemd's MurmurHash2.c, words read in native byte order."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    h = (seed ^ len(data)) & mask
    tail = len(data) - len(data) % 4
    for (word,) in struct.iter_unpack("=I", data[:tail]):
        k = (word * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    rest = data[tail:]
    if rest:
        for shift, byte in enumerate(rest):
            h ^= byte << (8 * shift)
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    return h ^ (h >> 15)


def string_hash32(text: str) -> int:
    """libudev's hash of a subsystem, device type or tag (filter_by's BPF filter compares it)."""
    return murmur_hash2(text.encode())


def tag_bloom64(tags: Iterable[str]) -> int:
    """libudev's 64-bit bloom filter of the tags (filter_by_tag's BPF filter checks it)."""
    bits = 0
    for tag in tags:
        hash32 = string_hash32(tag)
        for shift in (0, 6, 12, 18):
            bits |= 1 << ((hash32 >> shift) & 63)
    return bits


def _properties(props: Mapping[str, str]) -> bytes:
    return b"".join(f"{key}={value}".encode() + b"\0" for key, value in props.items())


def udev_message(props: Mapping[str, str]) -> bytes:
    """The datagram systemd-udevd broadcasts for a device with these properties."""
    body = _properties(props)
    subsystem = props.get("SUBSYSTEM")
    devtype = props.get("DEVTYPE")
    bloom = tag_bloom64(tag for tag in props.get("TAGS", "").split(":") if tag)
    header = (UDEV_PREFIX + struct.pack(">I", UDEV_MAGIC)
              + struct.pack("=III", UDEV_HEADER_SIZE, UDEV_HEADER_SIZE, len(body))
              + struct.pack(">IIII", string_hash32(subsystem) if subsystem else 0,
                            string_hash32(devtype) if devtype else 0, bloom >> 32,
                            bloom & 0xFFFFFFFF))
    return header + body


def send_udev_event(sock: socket.socket, props: Mapping[str, str]) -> None:
    """Broadcast `props` to the namespace's "udev" monitors, as systemd-udevd does.

    Sent as is: a valid event needs ACTION, DEVPATH, SUBSYSTEM and SEQNUM > 0 (libudev's
    `Monitor.poll()` raises ValueError otherwise). The kernel attaches the sender's credentials
    itself; libudev accepts them when the sender is root.
    """
    sock.sendto(udev_message(props), (0, GROUP_UDEV))


def kernel_message(props: Mapping[str, str], seq: int = 0) -> bytes:
    """The netlink request that makes the kernel broadcast `props` as its own uevent."""
    payload = f"{props['ACTION']}@{props['DEVPATH']}".encode() + b"\0" + _properties(
        {key: value for key, value in props.items() if key != "SEQNUM"})
    # No padding after the payload: the kernel would forward it as empty properties.
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(payload), NLMSG_MIN_TYPE,
                          NLM_F_REQUEST | NLM_F_ACK, seq, 0) + payload


def send_kernel_event(sock: socket.socket, props: Mapping[str, str]) -> None:
    """Have the kernel broadcast `props` to the namespace's "kernel" monitors.

    Needs ACTION and DEVPATH (KeyError otherwise); a SEQNUM in `props` is dropped, the kernel
    appends its own. Waits for the kernel's acknowledgement: OSError if it refused the event
    (EPERM without CAP_SYS_ADMIN, EINVAL if larger than 2048 bytes, ...).
    """
    seq = time.monotonic_ns() & 0xFFFFFFFF
    sock.sendto(kernel_message(props, seq), (0, 0))
    _wait_ack(sock, seq)


def _wait_ack(sock: socket.socket, seq: int) -> None:
    deadline = time.monotonic() + ACK_TIMEOUT_S
    while (remaining := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], remaining)[0]:
            break
        reply = sock.recv(65536)
        _, msg_type, _, reply_seq, _ = NLMSG_HDR.unpack_from(reply)
        if msg_type != NLMSG_ERROR or reply_seq != seq:
            continue
        (error,) = struct.unpack_from("=i", reply, NLMSG_HDR.size)
        if error:
            raise OSError(-error, f"kernel refused the uevent: {os.strerror(-error)}")
        return
    raise TimeoutError(f"no acknowledgement from the kernel within {ACK_TIMEOUT_S} s")


def open_monitor_in(netns: NetnsThread, source: str,
                    subsystems: Iterable[tuple[str, str | None]] = DEFAULT_SUBSYSTEMS,
                    ) -> pyudev.Monitor:
    """A started pyudev Monitor for `source` ("udev" or "kernel") in the namespace, filtered."""
    def open_monitor() -> pyudev.Monitor:
        monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source=source)
        for subsystem, device_type in subsystems:
            monitor.filter_by(subsystem, device_type)
        monitor.start()
        return monitor

    return netns.call(open_monitor)


def next_event(monitor: pyudev.Monitor, timeout_s: float = 5.0) -> pyudev.Device | None:
    """The next event that passes the monitor's filters, or None after `timeout_s`.

    `Monitor.poll` returns None early when it woke for a message that libudev then dropped
    (filtered out in user space, untrusted sender): keep polling until the deadline.
    """
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        device = monitor.poll(timeout=remaining)
        if device is not None:
            return device
    return None


def netns_unavailable(status: Path = Path("/proc/self/status")) -> str | None:
    """None if this process may create the namespace and send both sources, else why not."""
    match = re.search(r"^CapEff:\s*([0-9a-f]+)$", status.read_text(), re.MULTILINE)
    effective = int(match.group(1), 16) if match else 0
    missing = [name for name, bit in (("CAP_SYS_ADMIN", CAP_SYS_ADMIN), ("CAP_NET_ADMIN",
               CAP_NET_ADMIN)) if not effective >> bit & 1]
    if missing:
        return (f"missing {' and '.join(missing)} (run as root): needed to unshare a network "
                "namespace and to send uevents in it")
    return None


def udev_available() -> str | None:
    """None if a "udev" monitor can receive events here, else a sentence saying why not."""
    if os.geteuid() != 0:
        return ("not root: libudev drops udev-source messages whose sender credentials are not "
                "uid 0 (and creating the network namespace needs CAP_SYS_ADMIN)")
    if Path("/run/udev/control").exists() or _dev_is_devtmpfs():
        return None
    return ("/dev is not devtmpfs and /run/udev/control is missing (a container?): libudev's "
            "udev source then joins no netlink group and receives nothing")


def _dev_is_devtmpfs(mountinfo: Path = Path("/proc/self/mountinfo")) -> bool:
    """Whether the mount on /dev (the last one, the visible one) is a devtmpfs, as libudev asks."""
    fstype = None
    for line in mountinfo.read_text().splitlines():
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        if len(parts) > 4 and parts[4] == "/dev" and rest:
            fstype = rest.split()[0]
    return fstype is not None and fstype.startswith("devtmpfs")
