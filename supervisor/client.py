"""The thin client of the control socket (SPEC §7): where it is, one request, one reply.

Imported only by the commands that talk to the service, and light: `notify` starts fast.
"""

from __future__ import annotations

import json
import os
import socket

from supervisor import protocol

TIMEOUT_S = 2.0  # notify runs in OpenWrt's one-at-a-time hotplug chain: never hang it


class ServiceUnreachable(Exception):
    """The request was not delivered; the message says why in a sentence."""


def socket_path(explicit: str | None, config: str | None) -> str:
    """--socket, else $PRINTER_SUPERVISOR_SOCKET, else the config's control_socket, else the
    default path."""
    if explicit:
        return explicit
    if os.environ.get(protocol.SOCKET_ENV):
        return os.environ[protocol.SOCKET_ENV]
    config = config or os.environ.get(protocol.CONFIG_ENV) or protocol.DEFAULT_CONFIG
    try:
        import tomllib  # only when the path must come from the config file

        with open(config, "rb") as handle:
            path = tomllib.load(handle).get("daemon", {}).get("control_socket")
    except PermissionError as exc:
        raise ServiceUnreachable(f"cannot read {config} to find the control socket "
                                 f"({exc.strerror}): run as root, or pass --socket.") from None
    except (OSError, ValueError, AttributeError):
        path = None  # no file, or a broken one (check-config explains): the default will do
    return path if isinstance(path, str) and path else protocol.DEFAULT_SOCKET


def request(path: str, message: dict[str, object]) -> dict[str, object]:
    """One request, one reply (SPEC §7)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(TIMEOUT_S)
        try:
            conn.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ServiceUnreachable(f"printer-supervisor is not running (nothing listens on "
                                     f"{path}).") from None
        except PermissionError:
            raise ServiceUnreachable(f"not allowed to use {path}: run as root or as a member "
                                     "of the service's group.") from None
        except OSError as exc:  # backlog full (EAGAIN), timeout: there but not answering
            raise ServiceUnreachable(
                f"printer-supervisor did not accept a connection on {path} "
                f"({exc.strerror or exc}): it is overloaded or hung.") from None
        try:
            conn.sendall(json.dumps(message).encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n") and (chunk := conn.recv(65536)):
                reply += chunk
        except OSError as exc:
            raise ServiceUnreachable(f"printer-supervisor did not answer on {path}: "
                                     f"{exc}.") from None
    try:
        answer = json.loads(reply)
    except ValueError:
        raise ServiceUnreachable(f"printer-supervisor gave no valid answer on {path}.") from None
    if not isinstance(answer, dict):
        raise ServiceUnreachable(f"printer-supervisor gave no valid answer on {path}.")
    return answer
