#!/usr/bin/env bash
# Build the ocs-l3 test node image (Debian bookworm, systemd as PID 1) without any registry:
#   mmdebstrap ... | podman import ... localhost/ocs-l3-node:<recipe-hash>
# and tag it localhost/ocs-l3-node:current.
#
# <recipe-hash> = first 12 hex digits of sha256 over the recipe files (this script,
# packages.txt, customize.sh). When that tag already exists the build is skipped.
#
# Usage:  tools/image/build.sh [--force] [--no-deps]
#   --force    rebuild even if the hashed tag exists
#   --no-deps  do not apt-get install missing host tools
# Env:    OCS_L3_MIRROR (default http://deb.debian.org/debian),
#         OCS_L3_SECURITY_MIRROR (default http://deb.debian.org/debian-security)
# Runs as root on Debian 12 (CI and developer machines).
set -euo pipefail

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd -- "${here}/../.." && pwd -P)"
# shellcheck source=../podman-env.sh
. "${repo}/tools/podman-env.sh"

repo_name="localhost/ocs-l3-node"
suite="bookworm"
mirror="${OCS_L3_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${OCS_L3_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
recipe_files=("${here}/build.sh" "${here}/packages.txt" "${here}/customize.sh")

force=0
install_deps=1
for arg in "$@"; do
  case "${arg}" in
    --force) force=1 ;;
    --no-deps) install_deps=0 ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "build.sh: unknown argument: ${arg}" >&2; exit 2 ;;
  esac
done

log() { printf '[image] %s\n' "$*" >&2; }
die() { printf '[image] ERROR: %s\n' "$*" >&2; exit 1; }

[[ ${EUID} -eq 0 ]] || die "must run as root (mmdebstrap root mode, rootful podman)"

# --- host tools ---------------------------------------------------------------------------
# command -> Debian package
declare -A need=(
  [mmdebstrap]=mmdebstrap
  [podman]=podman
  [runc]=runc
  [conmon]=conmon
  [netavark]=netavark
  [sha256sum]=coreutils
)
missing=()
for cmd in "${!need[@]}"; do
  if ! command -v "${cmd}" >/dev/null 2>&1 && [[ ! -x /usr/lib/podman/${cmd} ]]; then
    missing+=("${need[${cmd}]}")
  fi
done
# aardvark-dns is not a command on PATH; podman networks want it for name resolution.
dpkg-query -W -f='${Status}' aardvark-dns 2>/dev/null | grep -q 'ok installed' || missing+=(aardvark-dns)
if ((${#missing[@]})); then
  ((install_deps)) || die "missing host packages: ${missing[*]} (rerun without --no-deps)"
  log "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi

# --- recipe hash / skip -------------------------------------------------------------------
for f in "${recipe_files[@]}"; do [[ -r ${f} ]] || die "recipe file missing: ${f}"; done
hash="$(cat "${recipe_files[@]}" | sha256sum | cut -c1-12)"
tag="${repo_name}:${hash}"

if ((!force)) && podman image exists "${tag}"; then
  log "image ${tag} already exists, skipping build"
  podman tag "${tag}" "${repo_name}:current"
  log "tagged ${repo_name}:current -> ${tag}"
  echo "${tag}"
  exit 0
fi

# --- package list -------------------------------------------------------------------------
packages="$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "${here}/packages.txt" | grep -v '^$' | paste -sd, -)"
[[ -n ${packages} ]] || die "no packages in ${here}/packages.txt"

# --- build --------------------------------------------------------------------------------
log "building ${tag} (suite ${suite}, mirror ${mirror})"
log "packages: ${packages}"
start=${SECONDS}
# mmdebstrap writes a tarball to stdout ("-"); podman import reads it from stdin.
# customize.sh runs chrooted in the finished root (systemctl mask/disable work offline there).
mmdebstrap \
  --quiet \
  --mode=root \
  --variant=apt \
  --format=tar \
  --include="${packages}" \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --customize-hook="chroot \"\$1\" /bin/sh -s < '${here}/customize.sh'" \
  --skip=cleanup/apt/lists \
  "${suite}" - \
  "deb ${mirror} ${suite} main" \
  "deb ${mirror} ${suite}-updates main" \
  "deb ${security_mirror} ${suite}-security main" \
| podman import --quiet \
    --change 'CMD ["/sbin/init"]' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    --change 'ENV container=podman' \
    --change "LABEL org.ocs-l3.recipe-hash=${hash}" \
    --message "ocs-l3 test node, recipe ${hash}" \
    - "${tag}" >/dev/null
# pipefail: a failing mmdebstrap fails the pipeline; make sure no half image stays tagged.
podman image exists "${tag}" || die "podman import did not produce ${tag}"
podman tag "${tag}" "${repo_name}:current"
log "built ${tag} (+ ${repo_name}:current) in $((SECONDS - start)) s"
echo "${tag}"
