"""What reports: the device tree (sysfs), hotplug events (udev, the kernel's netlink), the control
socket, the remembered ports, and the listening sockets clients connect to. Turns raw input into
core's events; never imports the workers, publishers, the command line or the lab.
"""
