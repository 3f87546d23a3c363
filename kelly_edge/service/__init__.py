"""Running as a service: systemd notify/watchdog, config reload, persisted state, rehearsal input."""
