"""How the service is seen: its JSON log and the log file, folded lines, systemd's sd_notify, the
process's own figures. Imported by every part of the service; never imports any of them.
"""
