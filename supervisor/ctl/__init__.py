"""`supervisorctl`: its parser and commands, the control-socket client, the log viewer. A thin
client: at module level it imports only the standard library and `protocol`; the service (`app`),
the configuration and the lab are imported inside the one command that needs them, so that
`notify` starts in tens of milliseconds.
"""
