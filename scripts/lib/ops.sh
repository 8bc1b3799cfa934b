# shellcheck shell=bash
# Where thumbgen's folders are, for backup.sh, restore.sh and diagnose.sh (sourced, not run).

# Every component backup.sh saves and restore.sh brings back.
# shellcheck disable=SC2034  # read by the scripts that source this file
all_components=(produtos backgrounds thumbnails rejeitados config logs state)

# Prints "<script>: message" on stderr and exits with `die_status` (default 1).
die() {
  echo "$(basename "$0"): $*" >&2
  exit "${die_status:-1}"
}

# Sets `base` (unless already given) and `systemd_layout`: BASE_PATH first, then the layout of
# scripts/install.sh when the current folder holds no produtos/, else the current folder.
find_base() {
  systemd_layout=false
  if [ -z "$base" ]; then
    if [ -n "${BASE_PATH:-}" ]; then
      base=$BASE_PATH
    elif [ ! -d produtos ] && [ -d /var/lib/thumbgen/produtos ]; then
      base=/var/lib/thumbgen
      systemd_layout=true
    else
      base=.
    fi
  fi
}

# A folder setting as thumbgen resolves it: absolute as is, relative under the base.
under_base() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$base/$1" ;;
  esac
}

# The folder of a backup component, honouring the same environment variables as thumbgen.
folder_of() {
  local default_logs=logs
  if $systemd_layout; then default_logs=/var/log/thumbgen; fi
  case "$1" in
    produtos) under_base "${UPLOAD_PATH:-produtos}" ;;
    backgrounds) under_base "${BACKGROUND_PATH:-backgrounds}" ;;
    thumbnails) under_base "${OUTPUT_PATH:-thumbnails-prontas}" ;;
    rejeitados) under_base "${REJECTED_PATH:-rejeitados}" ;;
    logs) under_base "${LOG_PATH:-$default_logs}" ;;
    state) under_base "${STATE_PATH:-.thumbgen}" ;;
    *) return 1 ;;
  esac
}
