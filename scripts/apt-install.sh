# Sourced by the test-cluster scripts (not run): apt_install PACKAGE...
# installs Debian packages quietly and without recommends (as root, or with
# sudo), printing apt's output only when it fails. Needs die() from the caller.
apt_install() {
  local sudo=()
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || die "install needs root (or sudo)"
    sudo=(sudo)
  fi
  local out rc=0
  out=$(mktemp)
  { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q update &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q install -y \
      --no-install-recommends "$@"; } >"$out" 2>&1 || rc=$?
  if ((rc != 0)); then cat "$out" >&2; rm -f "$out"; die "apt-get failed ($rc)"; fi
  rm -f "$out"
}
