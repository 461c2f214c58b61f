#!/usr/bin/env bash
# Removes lanekeeper; keeps /etc/lanekeeper and /var/lib/lanekeeper unless --purge.
# Same options as `install.sh --uninstall` (--prefix, --destdir, --purge).
exec "$(dirname "${BASH_SOURCE[0]}")/install.sh" --uninstall "$@"
