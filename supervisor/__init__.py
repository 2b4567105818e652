"""printer-supervisor: USB printers as network printers, driven by hotplug events."""

__version__ = "0.1.0"
