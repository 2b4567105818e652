"""Pure decisions: hotplug events, device identity, the state machine, the registry and its
reconcile, ports, status, metrics and announcements as data. Never imports I/O (asyncio, socket,
threads, subprocesses, pyudev, sdnotify, jeepney) nor any other part of the service, the log
included, but the settings types: the adapters around it turn the world into its inputs.
"""
