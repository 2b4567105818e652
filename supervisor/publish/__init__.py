"""What announces: ready printers over mDNS/DNS-SD (avahi or umdns), the metrics textfile, the
HTTP status page and /metrics. Reads the service's state through what it is handed; never imports
the workers (the print path), the command line or the lab.
"""
