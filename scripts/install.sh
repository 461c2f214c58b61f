#!/usr/bin/env bash
# Installs lanekeeper on a lane box (systemd/README.md): versioned releases under
# /opt/lanekeeper/releases/<version>, an atomically switched `current` link, the boot guard in
# /opt/lanekeeper/bin (outside every release), the systemd units, the udev rules, a dedicated
# `lanekeeper` user in the gpio and dialout groups.
#
# Idempotent: a second run with the same build changes nothing (no file is rewritten, no
# mtime moves). With --destdir (or DESTDIR=) everything is staged under that directory and the
# commands that touch the running system (useradd, chown, systemctl, udevadm) are only printed.
#
#   sudo scripts/install.sh                     # from a built tree (npm run build first)
#   scripts/install.sh --destdir /tmp/root      # stage into a temp root, touch nothing else
#   sudo scripts/install.sh --uninstall         # remove the app; keep /etc/lanekeeper and /var/lib/lanekeeper
#   sudo scripts/install.sh --uninstall --purge # ...and the config, the data and the user
set -euo pipefail

MIN_NODE=20.19.0
SERVICE_USER=lanekeeper
UNIT=lanekeeper.service
PROVISION_UNIT=lanekeeper-provision@.service
PROVISION_RULES=80-lanekeeper-usb-provision.rules

PREFIX=/opt/lanekeeper
DESTDIR="${DESTDIR:-}"
SRC=""
VERSION=""
NODE_BIN=""
ACTION=install
PURGE=0
START=1
IP_ALLOW=""

say() { printf 'lanekeeper-install: %s\n' "$*"; }
die() { printf 'lanekeeper-install: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<'EOF'
Usage: install.sh [options]
  --prefix DIR     application root (default /opt/lanekeeper)
  --destdir DIR    stage everything under DIR; print, do not run, useradd/chown/systemctl/udevadm
                   (same as DESTDIR=DIR)
  --from DIR       the built tree to install (default: the tree holding this script);
                   needs dist/cli.js, package.json and node_modules
  --version V      release name (default: "version" of package.json)
  --node PATH      Node.js binary for the units (default: `command -v node`); must be >= 20.19
  --no-start       install and enable, but do not (re)start the service
  --ip-allow LIST  restrict the service's network to loopback, link-local, the private ranges and
                   LIST (IPAddressDeny=any otherwise): CIDRs separated by spaces or commas,
                   e.g. the cloud platform's and the broker's. Without it there is no filter. Written as
                   the drop-in lanekeeper.service.d/50-ip-allow.conf; without it an existing
                   drop-in is left alone
  --uninstall      remove units, rules and the app; keep /etc/lanekeeper and /var/lib/lanekeeper
  --purge          with --uninstall: also remove config, data and the lanekeeper user
  -h, --help       this text
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) PREFIX="${1#*=}"; shift ;;
    --destdir) DESTDIR="${2:?--destdir needs a directory}"; shift 2 ;;
    --destdir=*) DESTDIR="${1#*=}"; shift ;;
    --from) SRC="${2:?--from needs a directory}"; shift 2 ;;
    --from=*) SRC="${1#*=}"; shift ;;
    --version) VERSION="${2:?--version needs a value}"; shift 2 ;;
    --version=*) VERSION="${1#*=}"; shift ;;
    --node) NODE_BIN="${2:?--node needs a path}"; shift 2 ;;
    --node=*) NODE_BIN="${1#*=}"; shift ;;
    --no-start) START=0; shift ;;
    --ip-allow) IP_ALLOW="${2?--ip-allow needs a list}"; shift 2 ;;
    --ip-allow=*) IP_ALLOW="${1#*=}"; shift ;;
    --uninstall) ACTION=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

[ "$PURGE" = 1 ] && [ "$ACTION" != uninstall ] && die "--purge only goes with --uninstall"
IP_ALLOW="${IP_ALLOW//,/ }"
for entry in $IP_ALLOW; do
  [[ "$entry" =~ ^(any|localhost|link-local|multicast|[0-9A-Fa-f:.]+(/[0-9]{1,3})?)$ ]] || die "--ip-allow: '$entry' is not an address, a CIDR range or any/localhost/link-local/multicast"
done
case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path (got $PREFIX)" ;; esac
PREFIX="${PREFIX%/}"
if [ -n "$DESTDIR" ]; then
  mkdir -p "$DESTDIR"
  DESTDIR="$(cd "$DESTDIR" && pwd)"
fi

# Installed locations (as the box sees them) and where they are written (under DESTDIR).
ETC_DIR=/etc/lanekeeper
STATE_DIR=/var/lib/lanekeeper
UNIT_DIR=/etc/systemd/system
RULES_DIR=/etc/udev/rules.d
BIN_LINK=/usr/local/bin/lanekeeper
IP_DROPIN=/etc/systemd/system/lanekeeper.service.d/50-ip-allow.conf
root() { printf '%s%s' "$DESTDIR" "$1"; }

CHANGED=0
changed() { CHANGED=1; say "$*"; }

# Commands that act on the running system: printed instead when staging into DESTDIR.
system() {
  if [ -n "$DESTDIR" ]; then
    say "would run: $*"
  else
    "$@"
  fi
}

user_exists() { [ -z "$DESTDIR" ] && getent passwd "$SERVICE_USER" >/dev/null 2>&1; }

# ensure_dir PATH MODE OWNER:GROUP: create when missing, fix mode/owner only when they differ
# (an unconditional chmod would be harmless for mtimes, but the log should say what changed).
ensure_dir() {
  local path; path="$(root "$1")"
  if [ ! -d "$path" ]; then
    mkdir -p "$path"
    chmod "$2" "$path"
    changed "created $1"
  elif [ "$(stat -c %a "$path")" != "$(printf '%o' "$((8#$2))")" ]; then
    chmod "$2" "$path"
    changed "mode $2 on $1"
  fi
  set_owner "$1" "$3"
}

set_owner() {
  local path; path="$(root "$1")"
  if [ -n "$DESTDIR" ]; then return 0; fi
  if [ "$(stat -c %U:%G "$path")" != "$2" ]; then
    chown "$2" "$path"
    changed "owner $2 on $1"
  fi
}

# install_file SOURCE DEST MODE: replace DEST (atomically) only when its content differs.
install_file() {
  local source="$1" dest; dest="$(root "$2")"
  mkdir -p "$(dirname "$dest")"
  if [ -f "$dest" ] && cmp -s "$source" "$dest"; then
    if [ "$(stat -c %a "$dest")" != "$(printf '%o' "$((8#$3))")" ]; then chmod "$3" "$dest"; changed "mode $3 on $2"; fi
    return 0
  fi
  local tmp; tmp="$(dirname "$dest")/.$(basename "$dest").tmp-$$"
  cp "$source" "$tmp"
  chmod "$3" "$tmp"
  mv -f "$tmp" "$dest"
  changed "installed $2"
}

# ensure_link TARGET LINK: point LINK at TARGET by renaming a new link over the old one, so
# there is no moment without a `current` (systemd/README.md "Release bundles").
ensure_link() {
  local link; link="$(root "$2")"
  if [ -L "$link" ] && [ "$(readlink "$link")" = "$1" ]; then return 0; fi
  ln -sfn "$1" "$link.tmp-$$"
  mv -T "$link.tmp-$$" "$link"
  changed "$2 -> $1"
}

remove_path() {
  local path; path="$(root "$1")"
  if [ -e "$path" ] || [ -L "$path" ]; then
    rm -rf "$path"
    changed "removed $1"
  fi
}

# Units point at the installed layout: the Node binary found here and the chosen prefix.
render() {
  sed -e "s#/usr/bin/node #${NODE_BIN//#/\\#} #g" -e "s#/opt/lanekeeper#${PREFIX//#/\\#}#g" "$1"
}

# ---------------------------------------------------------------------------------------------
uninstall() {
  system systemctl disable --now "$UNIT" || true
  system systemctl stop 'lanekeeper-provision@*.service' || true
  remove_path "$UNIT_DIR/$UNIT"
  remove_path "$IP_DROPIN"
  rmdir "$(root "$UNIT_DIR/$UNIT.d")" 2>/dev/null || true
  remove_path "$UNIT_DIR/$PROVISION_UNIT"
  remove_path "$RULES_DIR/$PROVISION_RULES"
  remove_path "$RULES_DIR/61-lanekeeper-serial.rules"
  remove_path "$BIN_LINK"
  remove_path "$PREFIX"
  if [ "$PURGE" = 1 ]; then
    remove_path "$RULES_DIR/62-lanekeeper-site.rules"
    remove_path "$ETC_DIR"
    remove_path "$STATE_DIR"
    if [ -n "$DESTDIR" ] || getent passwd "$SERVICE_USER" >/dev/null 2>&1; then system userdel "$SERVICE_USER"; fi
  else
    for kept in "$ETC_DIR" "$STATE_DIR"; do
      if [ -e "$(root "$kept")" ]; then say "kept $kept (config and data; --purge removes them)"; fi
    done
  fi
  if [ "$CHANGED" = 1 ]; then
    system systemctl daemon-reload
    system udevadm control --reload-rules
  fi
  say "uninstalled${DESTDIR:+ from $DESTDIR}"
}

if [ "$ACTION" = uninstall ]; then
  uninstall
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# 1. Node.js: Debian's own is too old (lanekeeper needs Node.js ≥ 20.19); refuse before touching anything.
if [ -z "$NODE_BIN" ]; then
  NODE_BIN="$(command -v node || true)"
  [ -n "$NODE_BIN" ] || die "Node.js not found. lanekeeper needs Node.js >= ${MIN_NODE%.0} from an upstream build (Debian's own package is too old); install it, or pass --node PATH"
fi
case "$NODE_BIN" in /*) ;; *) NODE_BIN="$(cd "$(dirname "$NODE_BIN")" && pwd)/$(basename "$NODE_BIN")" ;; esac
[ -x "$NODE_BIN" ] || die "$NODE_BIN is not an executable Node.js"
NODE_VERSION="$("$NODE_BIN" -p 'process.versions.node' 2>/dev/null)" || die "cannot run $NODE_BIN -p process.versions.node"
if [ "$(printf '%s\n%s\n' "$MIN_NODE" "$NODE_VERSION" | sort -V | head -n1)" != "$MIN_NODE" ]; then
  die "lanekeeper needs Node.js >= ${MIN_NODE%.0}; $NODE_BIN is v$NODE_VERSION. Debian's own nodejs package is too old: install an upstream Node.js 20 (>= 20.19) or 22 build and run this again (or pass --node PATH)."
fi

# 2. The build to install.
if [ -z "$SRC" ]; then SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"; fi
SRC="$(cd "$SRC" && pwd)"
[ -f "$SRC/dist/cli.js" ] || die "$SRC/dist/cli.js is missing: run \`npm run build\` first (or pass --from a built tree)"
[ -f "$SRC/package.json" ] || die "$SRC/package.json is missing"
[ -d "$SRC/node_modules" ] || die "$SRC/node_modules is missing: run \`npm ci\` first"
if [ -z "$VERSION" ]; then
  VERSION="$("$NODE_BIN" -p "require(process.argv[1]).version" "$SRC/package.json")" || die "cannot read the version from $SRC/package.json"
fi
[[ "$VERSION" =~ ^[0-9A-Za-z][0-9A-Za-z._+-]*$ ]] || die "release name '$VERSION' must be letters, digits, . _ + -"
# The boot guard comes with this script (a --from tree need not carry scripts/).
GUARD_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/boot-guard.sh"
[ -f "$GUARD_SRC" ] || GUARD_SRC="$SRC/scripts/boot-guard.sh"
[ -f "$GUARD_SRC" ] || die "boot-guard.sh is missing beside install.sh: the unit's ExecStartPre= needs it"

# What makes a release: the code, the booth panel it serves, the lock file standing for
# node_modules, the shipped units.
release_payload=(dist panel package.json package-lock.json systemd hw config scripts/install.sh scripts/boot-guard.sh)
source_hash() {
  (
    cd "$SRC"
    for item in "${release_payload[@]}"; do if [ -e "$item" ]; then find "$item" -type f; fi; done | LC_ALL=C sort | while IFS= read -r f; do sha256sum "$f"; done
    # Without a lock file, the dependency tree's shape stands in for it.
    [ -f package-lock.json ] || find node_modules -type f -printf '%P %s\n' | LC_ALL=C sort
  ) | sha256sum | cut -d' ' -f1
}
HASH="$(source_hash)"
say "installing lanekeeper $VERSION (Node.js v$NODE_VERSION at $NODE_BIN) into ${DESTDIR:-/}${DESTDIR:+ (staged)}, prefix $PREFIX"

# 3. The service user and its groups (gpio is Raspberry Pi OS's; create it elsewhere so that
# SupplementaryGroups= resolves).
if [ -n "$DESTDIR" ]; then
  say "would run: groupadd --system gpio (when missing); groupadd --system dialout (when missing)"
  say "would run: useradd --system --user-group --home-dir $STATE_DIR --no-create-home --shell /usr/sbin/nologin $SERVICE_USER (when missing)"
  say "would run: usermod -a -G gpio,dialout $SERVICE_USER (when not yet a member)"
else
  for group in gpio dialout; do
    getent group "$group" >/dev/null || { groupadd --system "$group"; changed "created group $group"; }
  done
  if ! getent passwd "$SERVICE_USER" >/dev/null; then
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
    changed "created user $SERVICE_USER"
  fi
  for group in gpio dialout; do
    id -nG "$SERVICE_USER" | tr ' ' '\n' | grep -qx "$group" || { usermod -a -G "$group" "$SERVICE_USER"; changed "added $SERVICE_USER to $group"; }
  done
fi
OWNER="$SERVICE_USER:$SERVICE_USER"

# 4. Directories. The service writes releases (remote update) and /etc/lanekeeper (config pushed
# over MQTT); /etc/lanekeeper is setgid so files it writes stay readable by the group.
ensure_dir "$PREFIX" 755 "$OWNER"
ensure_dir "$PREFIX/releases" 755 "$OWNER"
# The boot guard's home: root's, not the service user's, and outside releases/, so neither an
# update nor a broken release can change the code that rolls a broken release back.
ensure_dir "$PREFIX/bin" 755 "root:root"
ensure_dir "$ETC_DIR" 2770 "root:$SERVICE_USER"
ensure_dir "$STATE_DIR" 750 "$OWNER"

# 5. The release: copied once under a temporary name, then renamed into place; a release that
# is already there with the same content is left alone (that is what makes re-runs no-ops).
RELEASE="$PREFIX/releases/$VERSION"
release_dir="$(root "$RELEASE")"
stamp="$release_dir/.lanekeeper-release"
find "$(root "$PREFIX/releases")" -maxdepth 1 -name '.*.partial-*' -exec rm -rf {} + 2>/dev/null || true
if [ -f "$stamp" ] && grep -qx "hash=$HASH" "$stamp"; then
  say "release $VERSION already installed"
else
  partial="$(root "$PREFIX/releases")/.$VERSION.partial-$$"
  mkdir -p "$partial"
  for item in "${release_payload[@]}" node_modules; do
    if [ -e "$SRC/$item" ]; then
      mkdir -p "$partial/$(dirname "$item")"
      cp -a "$SRC/$item" "$partial/$item"
    fi
  done
  # Dev dependencies (TypeScript, tsx, test tools) have no business on the box.
  if [ -f "$partial/package-lock.json" ] && command -v npm >/dev/null 2>&1; then
    (cd "$partial" && npm prune --omit=dev --offline --no-audit --no-fund >/dev/null 2>&1) || say "npm prune failed; dev dependencies stay in the release"
  fi
  printf 'version=%s\nhash=%s\n' "$VERSION" "$HASH" >"$partial/.lanekeeper-release"
  if [ -z "$DESTDIR" ]; then chown -R "$OWNER" "$partial"; else say "would run: chown -R $OWNER $RELEASE"; fi
  if [ -e "$release_dir" ]; then
    # Same version, different build (a developer re-installing): swap it whole.
    mv -T "$release_dir" "$partial.old"
    mv -T "$partial" "$release_dir"
    rm -rf "$partial.old"
    changed "replaced release $VERSION (different build)"
  else
    mv -T "$partial" "$release_dir"
    changed "installed release $VERSION"
  fi
fi
ensure_link "releases/$VERSION" "$PREFIX/current"

# 6. Units, rules, the command.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
render "$SRC/systemd/$UNIT" >"$tmp/$UNIT"
render "$SRC/systemd/$PROVISION_UNIT" >"$tmp/$PROVISION_UNIT"
render "$GUARD_SRC" >"$tmp/boot-guard"
if [ -n "${IP_ALLOW// /}" ]; then
  printf '# Written by scripts/install.sh --ip-allow: lanekeeper.service may reach loopback, link-local,\n# multicast, the private ranges and the listed addresses, nothing else (systemd/README.md,\n# "Network allow-list").\n[Service]\nIPAddressDeny=any\nIPAddressAllow=localhost link-local multicast\nIPAddressAllow=10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10 fc00::/7\nIPAddressAllow=%s\n' "$(echo $IP_ALLOW)" >"$tmp/50-ip-allow.conf"
fi
printf '#!/bin/sh\n# lanekeeper command (installed by scripts/install.sh)\nexec %s %s/current/dist/cli.js "$@"\n' "$NODE_BIN" "$PREFIX" >"$tmp/lanekeeper"
before=$CHANGED
CHANGED=0
install_file "$tmp/$UNIT" "$UNIT_DIR/$UNIT" 644
install_file "$tmp/$PROVISION_UNIT" "$UNIT_DIR/$PROVISION_UNIT" 644
if [ -f "$tmp/50-ip-allow.conf" ]; then install_file "$tmp/50-ip-allow.conf" "$IP_DROPIN" 644; fi
units_changed=$CHANGED
CHANGED=0
install_file "$SRC/systemd/$PROVISION_RULES" "$RULES_DIR/$PROVISION_RULES" 644
for rules in "$SRC"/hw/udev/*.rules; do
  if [ -e "$rules" ]; then install_file "$rules" "$RULES_DIR/$(basename "$rules")" 644; fi
done
rules_changed=$CHANGED
install_file "$tmp/lanekeeper" "$BIN_LINK" 755
install_file "$tmp/boot-guard" "$PREFIX/bin/boot-guard" 755
if [ -f "$SRC/config/demo.json" ]; then install_file "$SRC/config/demo.json" "$ETC_DIR/lanekeeper.example.json" 640; fi
if [ "$before" = 1 ] || [ "$units_changed" = 1 ] || [ "$rules_changed" = 1 ]; then CHANGED=1; fi

# 7. Tell systemd and udev, enable, (re)start.
if [ "$units_changed" = 1 ]; then system systemctl daemon-reload; fi
if [ "$rules_changed" = 1 ]; then
  system udevadm control --reload-rules
  system udevadm trigger --subsystem-match=tty --action=change
fi
if [ -n "$DESTDIR" ]; then
  say "would run: systemctl enable $UNIT"
elif ! systemctl is-enabled --quiet "$UNIT" 2>/dev/null; then
  systemctl enable "$UNIT"
  changed "enabled $UNIT"
fi
if [ "$CHANGED" = 1 ] && [ "$START" = 1 ]; then
  # Without /etc/lanekeeper/lanekeeper.json the unit's condition skips the start: provision first.
  system systemctl restart "$UNIT"
fi
if [ ! -f "$(root "$IP_DROPIN")" ]; then
  say "the service may reach any address; --ip-allow LIST restricts it to the site LAN and LIST (systemd/README.md)"
fi
if [ ! -f "$(root "$ETC_DIR/lanekeeper.json")" ]; then
  say "no $ETC_DIR/lanekeeper.json yet: provision with a USB stick, or write it (see lanekeeper.example.json) and run: systemctl restart $UNIT"
fi
if [ "$CHANGED" = 1 ]; then say "done: lanekeeper $VERSION installed"; else say "done: nothing changed"; fi
