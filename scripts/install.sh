#!/usr/bin/env bash
# Installs thumbgen as a systemd service: the binary, the system user, the folders, a settings
# file and the unit. Run it as root from a checkout after `cargo build --release`, or with
# DESTDIR=/some/dir to only lay the files out under that folder (for packaging: no user is
# created, nothing is chowned and systemctl is not called).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/install.sh [--binary PATH] [--prefix DIR] [--destdir DIR]

Installs thumbgen as a systemd service.

  --binary PATH   the thumbgen binary to install [default: target/release/thumbgen]
  --prefix DIR    installation prefix of the binary and docs [default: $PREFIX or /usr/local]
  --destdir DIR   stage every file under DIR instead of / [default: $DESTDIR]; no user is
                  created, no ownership is changed and systemctl is not called
  -h, --help      show this help

What it installs (paths below DESTDIR when set):
  PREFIX/bin/thumbgen                         the binary (0755)
  PREFIX/lib/thumbgen/libonnxruntime.so.1.32.0  the engine's runtime, when the build made one
  PREFIX/share/doc/thumbgen/                  README, THIRD-PARTY-NOTICES.md (the licences of the
                                              crates compiled in), the model's and onnxruntime's
                                              licence files
  PREFIX/share/thumbgen/                      backup.sh, restore.sh, diagnose.sh
  /etc/systemd/system/thumbgen.service        the unit (0644), ExecStart pointing at PREFIX/bin
  /etc/thumbgen/thumbgen.env                  settings template (0640), only when absent
  /var/lib/thumbgen/{produtos,backgrounds,thumbnails-prontas,rejeitados,.thumbgen}
  /var/log/thumbgen/
and, unless DESTDIR is set, the system user and group `thumbgen`.

Uploaders write into produtos/ and backgrounds/ through the `thumbgen` group:
  usermod -aG thumbgen USER
EOF
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
binary="$repo/target/release/thumbgen"
prefix=${PREFIX:-/usr/local}
destdir=${DESTDIR:-}

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary=$2; shift 2 ;;
    --binary=*) binary=${1#*=}; shift ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --destdir) [ $# -ge 2 ] || die "--destdir needs a folder"; destdir=$2; shift 2 ;;
    --destdir=*) destdir=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

case "$prefix" in
  /*) ;;
  *) die "--prefix must be an absolute path, got: $prefix" ;;
esac
prefix=${prefix%/}
[ -n "$prefix" ] || prefix=/
destdir=${destdir%/}

[ -f "$binary" ] || die "binary not found: $binary (build it with 'cargo build --release' or pass --binary PATH)"
[ -x "$binary" ] || die "binary is not executable: $binary"
unit_src="$repo/systemd/thumbgen.service"
[ -f "$unit_src" ] || die "unit file not found: $unit_src"

if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (or set DESTDIR to stage the files in a folder)"
fi

user=thumbgen
group=thumbgen
state=/var/lib/thumbgen
logs=/var/log/thumbgen
etc=/etc/thumbgen
bindir="$prefix/bin"
docdir="$prefix/share/doc/thumbgen"
sharedir="$prefix/share/thumbgen"
unitdir=/etc/systemd/system

# Creates a folder under DESTDIR with a mode; the owner only on a real install. An existing
# folder keeps the mode and owner it has (an administrator may have changed them).
make_dir() {
  local dir="$destdir$1" mode=$2 owner=$3
  if [ -d "$dir" ]; then
    return
  fi
  install -d -m "$mode" "$dir"
  if [ -z "$destdir" ] && [ -n "$owner" ]; then
    chown "$owner" "$dir"
  fi
  echo "  created $dir"
}

# Copies a file into place through a temporary name and a rename, so a running binary or a
# reader never sees half a file.
put_file() {
  local src=$1 dest="$destdir$2" mode=$3
  local tmp
  install -d -m 0755 "$(dirname "$dest")"
  tmp=$(mktemp "$dest.XXXXXX")
  cat "$src" >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest"
  echo "  installed $dest"
}

echo "Installing thumbgen (prefix $prefix${destdir:+, staged under $destdir})"

# 1. The system user and group: no login, no home of its own beyond the state folder.
if [ -z "$destdir" ]; then
  if ! getent group "$group" >/dev/null; then
    groupadd --system "$group"
    echo "  created group $group"
  fi
  if ! getent passwd "$user" >/dev/null; then
    nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/bin/false
    useradd --system --gid "$group" --home-dir "$state" --no-create-home \
      --shell "$nologin" --comment "thumbgen hot-folder daemon" "$user"
    echo "  created user $user"
  fi
fi

# 2. The binary and its documentation (the embedded model's licence and the third-party notices of
# the crates compiled in travel with it), and the onnxruntime library the build left beside the
# binary (the binary looks in ../lib/thumbgen/), with its licence and notices. A tract-only build
# has none.
[ -f "$repo/THIRD-PARTY-NOTICES.md" ] ||
  die "THIRD-PARTY-NOTICES.md not found in $repo (make it with scripts/third-party-notices)"
put_file "$binary" "$bindir/thumbgen" 0755
bin_src=$(dirname "$binary")
if [ -f "$bin_src/libonnxruntime.so.1.32.0" ]; then
  put_file "$bin_src/libonnxruntime.so.1.32.0" "$prefix/lib/thumbgen/libonnxruntime.so.1.32.0" 0644
fi
for doc in "$repo/README.md" "$repo/LICENSE" "$repo/THIRD-PARTY-NOTICES.md" "$repo"/models/LICENSE-* \
  "$bin_src/LICENSE-onnxruntime-MIT.txt" \
  "$bin_src/onnxruntime-ThirdPartyNotices.txt"; do
  if [ -f "$doc" ]; then
    put_file "$doc" "$docdir/$(basename "$doc")" 0644
  fi
done

# The operations scripts, for cron and for diagnosis on the server.
for tool in backup.sh restore.sh diagnose.sh; do
  put_file "$repo/scripts/$tool" "$sharedir/$tool" 0755
done
put_file "$repo/scripts/lib/ops.sh" "$sharedir/lib/ops.sh" 0644

# 3. The unit, pointing at the installed binary and docs.
unit_tmp=$(mktemp)
trap 'rm -f "$unit_tmp"' EXIT
sed -e "s|/usr/local/bin/thumbgen|$bindir/thumbgen|g" \
  -e "s|/usr/local/share/doc/thumbgen|$docdir|g" "$unit_src" >"$unit_tmp"
put_file "$unit_tmp" "$unitdir/thumbgen.service" 0644

# 4. Folders. Uploaders (group thumbgen) may write the input folders and read the outputs; the
# set-group-id bit keeps new files in the group. The daemon's own UMask is 0027.
make_dir "$state" 0750 "$user:$group"
make_dir "$state/produtos" 2770 "$user:$group"
make_dir "$state/backgrounds" 2770 "$user:$group"
make_dir "$state/thumbnails-prontas" 2750 "$user:$group"
make_dir "$state/rejeitados" 2770 "$user:$group"
make_dir "$state/.thumbgen" 0750 "$user:$group"
make_dir "$logs" 0750 "$user:$group"

# 5. The settings file: written once, never overwritten (it holds the administrator's values
# and possibly secrets, hence 0640 root:thumbgen).
make_dir "$etc" 0755 ""
env_file="$destdir$etc/thumbgen.env"
if [ -e "$env_file" ]; then
  echo "  kept existing $env_file"
else
  env_tmp=$(mktemp "$env_file.XXXXXX")
  cat >"$env_tmp" <<'EOF'
# thumbgen settings for the systemd service (read by systemd: KEY=value, no quotes needed).
# Every setting is listed in the README ("Configuration"). After a change:
#   systemctl reload thumbgen    (LOG_LEVEL takes effect at once)
#   systemctl restart thumbgen   (everything else)
# BASE_PATH=/var/lib/thumbgen and LOG_PATH=/var/log/thumbgen are set by the unit; the service
# may only write there (ProtectSystem=strict). Another folder needs a ReadWritePaths= drop-in
# (systemctl edit thumbgen).

# --- Logging ---
#LOG_LEVEL=info
#LOG_FORMAT=text

# --- HTTP: /health, /health/live, /health/ready, /metrics ---
#HTTP_ADDR=127.0.0.1:8501
#PORT=8501

# --- Web console at http://HTTP_ADDR/ ---
# On a non-loopback HTTP_ADDR the console needs a token (make one: openssl rand -hex 16);
# without one it answers 403. /health and /metrics stay open.
#CONSOLE_ENABLED=true
#CONSOLE_TOKEN=

# --- Work ---
#WORKERS=0
#WATCH_MODE=auto
#POLL_INTERVAL=2s
#RESCAN_INTERVAL=5m
#DELETE_ORPHANS=false
# Keep below TimeoutStopSec (45 s) of the unit, or raise that too.
#SHUTDOWN_TIMEOUT=30s

# --- Inputs ---
#MAX_FILE_SIZE=10MiB
#ALLOWED_FORMATS=jpeg,png,webp
#MAX_PIXELS=50000000

# --- Cut-out cache ---
#CACHE_ENABLED=true
#CACHE_TTL=7d

# --- Background removal: the embedded engine by default; a Gradio app (e.g. a Hugging Face
# Space) when GRADIO_API_URL is set ---
#REMOVAL_ENGINE=auto
#GRADIO_API_URL=https://owner-space.hf.space
#GRADIO_API_NAME=/predict
#GRADIO_TIMEOUT=120s
#GRADIO_FALLBACK_ENABLED=false
#HF_TOKEN=
EOF
  chmod 0640 "$env_tmp"
  if [ -z "$destdir" ]; then
    chown "root:$group" "$env_tmp"
  fi
  mv "$env_tmp" "$env_file"
  echo "  installed $env_file"
fi

echo
if [ -n "$destdir" ]; then
  echo "Files staged under $destdir (no user created, systemctl not called)."
  echo "On the target machine: create the system user 'thumbgen', then"
  echo "  systemctl daemon-reload && systemctl enable --now thumbgen"
  exit 0
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  systemctl daemon-reload
  if systemctl is-active --quiet thumbgen; then
    echo "thumbgen is running the previous binary: systemctl restart thumbgen"
  fi
fi
cat <<EOF
Next steps:
  1. review the settings:    \$EDITOR $etc/thumbgen.env
  2. start it at boot, now:  systemctl daemon-reload && systemctl enable --now thumbgen
  3. check it:               $bindir/thumbgen health && journalctl -u thumbgen -f
                             $sharedir/diagnose.sh
  4. let uploaders in:       usermod -aG $group USER   (they write into $state/produtos)
EOF
