# shellcheck shell=bash
# Source this file (do not execute it):   . tools/podman-env.sh
# Exports what podman needs on the test machines (Debian 12, root, no registry):
#   CONTAINERS_CONF  -> <repo>/molecule/containers.conf (runc, cgroupfs, low ulimits, stop_timeout=2)
#   OCS_L3_IMAGE     -> the harness node image (built by tools/image/build.sh)
_ocs_l3_env_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]:-$0}")" && pwd -P)"
OCS_L3_REPO_ROOT="$(cd -- "${_ocs_l3_env_dir}/.." && pwd -P)"
export OCS_L3_REPO_ROOT
export CONTAINERS_CONF="${OCS_L3_REPO_ROOT}/molecule/containers.conf"
export OCS_L3_IMAGE="${OCS_L3_IMAGE:-localhost/ocs-l3-node:current}"
unset _ocs_l3_env_dir
