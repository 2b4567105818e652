"""The configuration: settings types, value checks and validation, the TOML and UCI forms, the
loader that picks one, and the p910nd migration. Never imports the service (app, runtime,
sources, workers, publish) or the command line: both of those import it.

No re-exports here: `notify` reaches the UCI grammar through this package and must not pay for
TOML, validation or ipaddress.
"""
