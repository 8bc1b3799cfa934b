#!/usr/bin/env bash
# Restores thumbgen's folders from an archive made by scripts/backup.sh, after checking every
# file against the archive's checksums. See --help.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/ops.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/ops.sh"

usage() {
  cat <<'EOF'
Usage: scripts/restore.sh --from ARCHIVE [--base DIR] [--component NAME|all]... [--force] [--list]

Restores components of a thumbgen backup (scripts/backup.sh) into the base folder.

  --from ARCHIVE      a thumbgen-backup-YYYYmmdd-HHMMSS.tar.gz
  --base DIR          thumbgen's base folder [default: $BASE_PATH, else the current folder,
                      else /var/lib/thumbgen when it holds produtos/ (systemd layout)]
  --component NAME    produtos, backgrounds, thumbnails, rejeitados, config, logs, state or
                      all; repeat it or give a comma-separated list [default: all that the
                      archive holds]
  --force             restore over folders and files that exist and are not empty: the current
                      ones are moved aside to NAME.before-restore-YYYYmmdd-HHMMSS (nothing is
                      deleted; remove them once the restore looks right)
  --list              print the archive's manifest and exit
  -h, --help          show this help

Checks, before anything is changed:
  - the archive against ARCHIVE.sha256 when that file is beside it;
  - every restored file against SHA256SUMS inside the archive (and that no unlisted file came
    with it);
  - that no target holds data, unless --force.
Without --force an existing empty folder (as thumbgen creates at start) is simply filled.
Folder settings (UPLOAD_PATH, …) are read from the environment like thumbgen does. The config
component goes back to BASE/config/, BASE/.env and /etc/thumbgen/thumbgen.env
($THUMBGEN_ENV_FILE overrides that path).

Stop thumbgen first (systemctl stop thumbgen / docker compose --profile single stop) and
start it afterwards: it then picks up the restored journal and cache and redoes only what is
missing.
EOF
}


archive=
base=
requested=()
force=false
list=false

while [ $# -gt 0 ]; do
  case "$1" in
    --from) [ $# -ge 2 ] || die "--from needs an archive"; archive=$2; shift 2 ;;
    --from=*) archive=${1#*=}; shift ;;
    --base) [ $# -ge 2 ] || die "--base needs a folder"; base=$2; shift 2 ;;
    --base=*) base=${1#*=}; shift ;;
    --component | --components) [ $# -ge 2 ] || die "$1 needs a name"; requested+=("$2"); shift 2 ;;
    --component=* | --components=*) requested+=("${1#*=}"); shift ;;
    --force) force=true; shift ;;
    --list) list=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

for tool in tar gzip sha256sum find; do
  command -v "$tool" >/dev/null || die "$tool is missing (install coreutils, tar, gzip, findutils)"
done
[ -n "$archive" ] || die "--from ARCHIVE is required (see --help)"
[ -f "$archive" ] || die "archive not found: $archive"
archive=$(cd "$(dirname "$archive")" && pwd)/$(basename "$archive")

# --- The archive: whole-file checksum, layout, manifest ---------------------------------------
if [ -f "$archive.sha256" ]; then
  expected=$(cut -d' ' -f1 <"$archive.sha256")
  actual=$(sha256sum <"$archive" | cut -d' ' -f1)
  [ "$expected" = "$actual" ] || die "$archive does not match $archive.sha256: the archive is damaged"
  echo "Archive checksum OK ($archive.sha256)"
else
  echo "note: no $archive.sha256 beside the archive; relying on the checksums inside it" >&2
fi

listing=$(mktemp)
work=
cleanup() {
  rm -f "$listing"
  if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

tar -tzf "$archive" >"$listing" || die "$archive is not a readable .tar.gz"
top=$(head -n 1 "$listing")
top=${top%%/*}
case "$top" in
  thumbgen-backup-*) ;;
  *) die "$archive is not a thumbgen backup (top folder: $top)" ;;
esac
grep -qx "$top/MANIFEST" "$listing" || die "$archive has no MANIFEST"
grep -qx "$top/SHA256SUMS" "$listing" || die "$archive has no SHA256SUMS"
manifest=$(tar -xzOf "$archive" "$top/MANIFEST")

if $list; then
  printf '%s\n' "$manifest"
  exit 0
fi

in_archive=$(printf '%s\n' "$manifest" | sed -n 's/^components=//p')
IFS=',' read -r -a archived <<<"$in_archive"

selected=()
[ ${#requested[@]} -gt 0 ] || requested=(all)
for item in "${requested[@]}"; do
  IFS=',' read -r -a names <<<"$item"
  for c in "${names[@]}"; do
    c=${c// /}
    [ -n "$c" ] || continue
    if [ "$c" = all ]; then
      for a in "${archived[@]}"; do
        case " ${selected[*]} " in *" $a "*) ;; *) selected+=("$a") ;; esac
      done
      continue
    fi
    [ "$c" = thumbnails-prontas ] && c=thumbnails
    [ "$c" = .thumbgen ] && c=state
    case " ${all_components[*]} " in
      *" $c "*) ;;
      *) die "unknown component: $c (known: ${all_components[*]} all)" ;;
    esac
    case " ${archived[*]} " in
      *" $c "*) ;;
      *) die "component $c is not in this archive (it holds: ${archived[*]})" ;;
    esac
    case " ${selected[*]} " in *" $c "*) ;; *) selected+=("$c") ;; esac
  done
done
[ ${#selected[@]} -gt 0 ] || die "nothing to restore"

# --- Where things go -------------------------------------------------------------------------
find_base
mkdir -p "$base"
base=$(cd "$base" && pwd)
env_file=${THUMBGEN_ENV_FILE:-/etc/thumbgen/thumbgen.env}



# --- Extract and verify ----------------------------------------------------------------------
work=$(mktemp -d "$base/.thumbgen-restore.XXXXXX")
members=("$top/MANIFEST" "$top/SHA256SUMS")
for c in "${selected[@]}"; do members+=("$top/$c"); done
tar -C "$work" -xzf "$archive" "${members[@]}" || die "extracting from $archive failed"
root=$work/$top

# The checksum lines of the selected components ("\" starts a line whose name is escaped).
pattern=$(IFS='|'; echo "${selected[*]}")
sums=$work/selected.sha256
grep -E "^\\\\?[0-9a-f]{64} [ *]\\\\?($pattern)/" "$root/SHA256SUMS" >"$sums" || true
listed=$(wc -l <"$sums")
present=$(cd "$root" && find "${selected[@]}" -type f -printf . | wc -c)
if [ "$listed" -gt 0 ]; then
  (cd "$root" && sha256sum --check --strict --quiet "$sums") ||
    die "checksums do not match: the archive is damaged; nothing was restored"
fi
[ "$listed" -eq "$present" ] ||
  die "the archive holds $present files for ${selected[*]} but lists $listed in SHA256SUMS; nothing was restored"
echo "Verified $listed files of: ${selected[*]}"

# --- Plan: every (archived item, target) pair; refuse before touching anything ----------------
items=()
targets=()
for c in "${selected[@]}"; do
  if [ "$c" = config ]; then
    if [ -d "$root/config/base/config" ]; then items+=("$root/config/base/config"); targets+=("$base/config"); fi
    if [ -f "$root/config/base/.env" ]; then items+=("$root/config/base/.env"); targets+=("$base/.env"); fi
    if [ -f "$root/config/etc/thumbgen.env" ]; then items+=("$root/config/etc/thumbgen.env"); targets+=("$env_file"); fi
  else
    items+=("$root/$c")
    targets+=("$(folder_of "$c")")
  fi
done

# Whether a target holds anything a restore would replace.
occupied() {
  if [ -d "$1" ] && [ ! -L "$1" ]; then
    [ -n "$(find "$1" -mindepth 1 -maxdepth 1 -print -quit)" ]
  else
    [ -e "$1" ] || [ -L "$1" ]
  fi
}

conflicts=()
for t in "${targets[@]}"; do
  if occupied "$t"; then conflicts+=("$t"); fi
done
if [ ${#conflicts[@]} -gt 0 ] && ! $force; then
  printf 'restore.sh: these already hold data:\n' >&2
  printf '  %s\n' "${conflicts[@]}" >&2
  die "nothing was restored; use --force to move them aside (NAME.before-restore-TIMESTAMP) and restore"
fi

# --- Restore ---------------------------------------------------------------------------------
stamp=$(date -u +%Y%m%d-%H%M%S)
for i in "${!items[@]}"; do
  item=${items[$i]}
  target=${targets[$i]}
  if occupied "$target"; then
    aside=$target.before-restore-$stamp
    mv "$target" "$aside"
    echo "  moved aside $target -> $aside"
  elif [ -d "$target" ]; then
    rmdir "$target"
  fi
  mkdir -p "$(dirname "$target")"
  mv "$item" "$target"
  if [ -d "$target" ]; then
    echo "  restored $target ($(find "$target" -type f -printf . | wc -c) files)"
  else
    echo "  restored $target"
  fi
done
echo "Restore complete. Start thumbgen again; it redoes only what the restored journal lacks."
