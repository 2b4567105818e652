"""Announcing ready printers over mDNS/DNS-SD through the host's responder (avahi or umdns)."""
