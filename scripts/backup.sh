#!/usr/bin/env bash
# Backs up thumbgen's folders into one timestamped, checksummed archive and deletes archives
# older than the retention. See --help.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/ops.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/ops.sh"
umask 077 # the config component may hold secrets (HF_TOKEN)

usage() {
  cat <<'EOF'
Usage: scripts/backup.sh [--base DIR] [--dest DIR] [--retention-days N] [--components LIST]

Writes DEST/thumbgen-backup-YYYYmmdd-HHMMSS.tar.gz (UTC time) and beside it
thumbgen-backup-YYYYmmdd-HHMMSS.tar.gz.sha256, then deletes backups in DEST older than
N days.

  --base DIR            thumbgen's base folder [default: $BASE_PATH, else the current folder,
                        else /var/lib/thumbgen when it holds produtos/ (systemd layout)]
  --dest DIR            where archives go [default: ./backups; /var/backups/thumbgen for the
                        systemd layout]
  --retention-days N    delete thumbgen-backup-*.tar.gz in DEST older than N days
                        [default: 14; 0 keeps everything]
  --components LIST     comma-separated, or "all" [default: all]:
                          produtos     product photos       (UPLOAD_PATH, produtos/)
                          backgrounds  backgrounds          (BACKGROUND_PATH, backgrounds/)
                          thumbnails   finished thumbnails  (OUTPUT_PATH, thumbnails-prontas/)
                          rejeitados   rejected inputs      (REJECTED_PATH, rejeitados/)
                          config       BASE/config/, BASE/.env and /etc/thumbgen/thumbgen.env
                                       ($THUMBGEN_ENV_FILE overrides that path)
                          logs         app.log and its rotations (LOG_PATH, logs/;
                                       /var/log/thumbgen for the systemd layout)
                          state        cut-out cache and journal (STATE_PATH, .thumbgen/)
  -h, --help            show this help

Folder settings (UPLOAD_PATH, …) are read from the environment like thumbgen does: relative
values are taken under the base folder.

Archive layout: one top folder thumbgen-backup-YYYYmmdd-HHMMSS/ holding MANIFEST (what, from
where, how many files), SHA256SUMS (every file of every component) and one folder per
component. The archive is made from a copy taken first, so its checksums match its contents
even while thumbgen keeps writing; for a state backup that matches the outputs exactly, stop
thumbgen first. Archives are created with mode 0600.

Restore with scripts/restore.sh --from ARCHIVE.
EOF
}


base=
dest=
retention=14
components=all

while [ $# -gt 0 ]; do
  case "$1" in
    --base) [ $# -ge 2 ] || die "--base needs a folder"; base=$2; shift 2 ;;
    --base=*) base=${1#*=}; shift ;;
    --dest) [ $# -ge 2 ] || die "--dest needs a folder"; dest=$2; shift 2 ;;
    --dest=*) dest=${1#*=}; shift ;;
    --retention-days) [ $# -ge 2 ] || die "--retention-days needs a number"; retention=$2; shift 2 ;;
    --retention-days=*) retention=${1#*=}; shift ;;
    --components | --component) [ $# -ge 2 ] || die "$1 needs a list"; components=$2; shift 2 ;;
    --components=* | --component=*) components=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

for tool in tar gzip sha256sum find du; do
  command -v "$tool" >/dev/null || die "$tool is missing (install coreutils, tar, gzip, findutils)"
done
[[ "$retention" =~ ^[0-9]+$ ]] || die "--retention-days must be a whole number of days, got: $retention"

# --- Where things are ------------------------------------------------------------------------
find_base
[ -d "$base" ] || die "base folder not found: $base"
base=$(cd "$base" && pwd)
if [ -z "$dest" ]; then
  if $systemd_layout; then dest=/var/backups/thumbgen; else dest=$PWD/backups; fi
fi
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
env_file=${THUMBGEN_ENV_FILE:-/etc/thumbgen/thumbgen.env}




# --- Which components ------------------------------------------------------------------------
selected=()
if [ "$components" = all ]; then
  selected=("${all_components[@]}")
else
  IFS=',' read -r -a wanted <<<"$components"
  for c in "${wanted[@]}"; do
    c=${c// /}
    [ -n "$c" ] || continue
    [ "$c" = thumbnails-prontas ] && c=thumbnails
    [ "$c" = .thumbgen ] && c=state
    found=false
    for known in "${all_components[@]}"; do
      [ "$c" = "$known" ] && found=true
    done
    $found || die "unknown component: $c (known: ${all_components[*]})"
    for s in "${selected[@]}"; do
      [ "$s" = "$c" ] && continue 2
    done
    selected+=("$c")
  done
fi
[ ${#selected[@]} -gt 0 ] || die "no component selected"

# --- Copy, checksum, pack --------------------------------------------------------------------
stamp=$(date -u +%Y%m%d-%H%M%S)
while [ -e "$dest/thumbgen-backup-$stamp.tar.gz" ]; do
  sleep 1
  stamp=$(date -u +%Y%m%d-%H%M%S)
done
name=thumbgen-backup-$stamp
stage=$(mktemp -d "$dest/.$name.XXXXXX")
cleanup() { rm -rf "$stage"; }
trap cleanup EXIT
root=$stage/$name
mkdir "$root"

# Copies a folder's tree (permissions, times, odd names) into the stage. A file that changes or
# vanishes while being read is reported, not fatal: thumbgen may be running. Its own temporary
# files (atomic writes in progress) are left out.
copy_tree() {
  local src=$1 dst=$2
  mkdir -p "$dst"
  set +e
  tar -C "$src" --exclude='*.thumbgen-tmp' --ignore-failed-read \
    --warning=no-file-changed --warning=no-file-removed -cf - . | tar -C "$dst" -xf -
  local status=("${PIPESTATUS[@]}")
  set -e
  if [ "${status[1]}" -ne 0 ] || [ "${status[0]}" -gt 1 ]; then
    die "copying $src failed"
  fi
  if [ "${status[0]}" -eq 1 ]; then
    echo "  note: files in $src changed during the copy; the archive holds what was read" >&2
  fi
}

manifest=$root/MANIFEST
{
  echo "format=thumbgen-backup/1"
  echo "created=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host=$(hostname 2>/dev/null || echo unknown)"
  echo "base=$base"
  version=$("${THUMBGEN_BIN:-thumbgen}" --version 2>/dev/null || true)
  echo "thumbgen_version=${version#thumbgen }"
  echo "components=$(IFS=,; echo "${selected[*]}")"
} >"$manifest"

echo "Backing up $base to $dest/$name.tar.gz"
for c in "${selected[@]}"; do
  if [ "$c" = config ]; then
    src="$base/config, $base/.env, $env_file"
    mkdir -p "$root/config"
    if [ -d "$base/config" ]; then copy_tree "$base/config" "$root/config/base/config"; fi
    if [ -f "$base/.env" ]; then
      mkdir -p "$root/config/base"
      cp -p "$base/.env" "$root/config/base/.env"
    fi
    if [ -f "$env_file" ]; then
      mkdir -p "$root/config/etc"
      cp -p "$env_file" "$root/config/etc/thumbgen.env"
    fi
  else
    src=$(folder_of "$c")
    if [ -d "$src" ]; then
      copy_tree "$src" "$root/$c"
    else
      echo "  note: $c folder $src does not exist; recorded as empty" >&2
      mkdir -p "$root/$c"
    fi
  fi
  files=$(find "$root/$c" -type f -printf . | wc -c)
  bytes=$(du -sb "$root/$c" | cut -f1)
  {
    echo "component.$c.source=$src"
    echo "component.$c.files=$files"
    echo "component.$c.bytes=$bytes"
  } >>"$manifest"
  printf '  %-12s %8d files  %s\n' "$c" "$files" "$src"
done

# Paths in SHA256SUMS are relative to the archive's top folder: produtos/a.jpg, state/… .
(cd "$root" && find "${selected[@]}" -type f -print0 | sort -z | xargs -0r sha256sum --) >"$root/SHA256SUMS"

part=$dest/.$name.tar.gz.part
tar -C "$stage" -czf "$part" "$name"
mv "$part" "$dest/$name.tar.gz"
(cd "$dest" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "Wrote $dest/$name.tar.gz ($(du -h "$dest/$name.tar.gz" | cut -f1))"

# --- Retention -------------------------------------------------------------------------------
if [ "$retention" -gt 0 ]; then
  while IFS= read -r -d '' old; do
    [ "$old" = "$dest/$name.tar.gz" ] && continue
    rm -f "$old" "$old.sha256"
    echo "Deleted $old (older than $retention days)"
  done < <(find "$dest" -maxdepth 1 -type f -name 'thumbgen-backup-*.tar.gz' -mmin +$((retention * 1440)) -print0)
fi
