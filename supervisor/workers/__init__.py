"""What acts on a printer: the AppSocket forwarder and its pump, the firmware push, the device
node's opening. Never imports the publishers (publish/), the command line or the lab.
"""
