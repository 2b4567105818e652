"""The lab: a virtual printer and a fake sysfs tree, a private two-host network, and the demo
that plays the whole story on them. Shared by `supervisorctl demo`, the tests and the benchmarks;
the service never imports it (no part of it does).
"""
