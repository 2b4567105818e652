"""Device knowledge as data: the firmware catalog (catalog.toml) and how to obtain the files."""
