#!/usr/bin/env bash
# Checks of Twofold's deployment files, installing what they need on a fresh Debian machine
# (systemd for systemd-analyze, prometheus for promtool, haproxy, python3-yaml, cargo-deb):
# - the Debian package builds (`cargo deb`), holds the expected files, and its unit passes
#   `systemd-analyze verify` against the packaged binary;
# - `systemd-analyze security --offline=yes` rates the unit's exposure at 2.0 or lower;
# - promtool accepts the Prometheus configuration and rules, and the rule unit tests pass;
# - the Grafana dashboard is valid JSON, every query parses as PromQL, and names only
#   metrics the gateway exports;
# - HAProxy accepts its example configuration.
# Usage: bash deploy/check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The highest exposure level `systemd-analyze security` may give the unit.
exposure_max=2.0

missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v promtool >/dev/null || missing+=(prometheus)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v python3 >/dev/null || missing+=(python3)
python3 -c "import yaml" 2>/dev/null || missing+=(python3-yaml)
command -v dpkg-deb >/dev/null || missing+=(dpkg)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
if ! cargo deb --version >/dev/null 2>&1; then
  echo "== installing cargo-deb"
  cargo install cargo-deb --locked --quiet
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== Debian package (cargo deb)"
# Built first with the workspace's release profile (shared with the other release builds
# of the test run), then packaged as it is; without the default `dev-backend` feature, as
# `[package.metadata.deb]` asks, so that no s3s, tokio or hyper is in the packaged binary.
cargo build --release --locked -q -p gateway --no-default-features
cargo deb -p gateway --no-build --strip --output "$work/twofold.deb" >"$work/cargo-deb.log" 2>&1 \
  || { cat "$work/cargo-deb.log"; exit 1; }
dpkg-deb -I "$work/twofold.deb" >"$work/info"
dpkg-deb -c "$work/twofold.deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$work/contents"
for path in /usr/bin/twofold /etc/twofold/twofold.toml /usr/lib/sysusers.d/twofold.conf \
  /usr/share/doc/twofold/operations.md /usr/share/doc/twofold/configuration.md \
  /usr/share/doc/twofold/examples/prometheus/twofold-rules.yml \
  /usr/share/doc/twofold/examples/grafana/twofold-dashboard.json \
  /usr/share/doc/twofold/examples/haproxy/haproxy.cfg \
  /usr/share/doc/twofold/console/uplot.LICENSE; do
  grep -qx "$path" "$work/contents" || { echo "package lacks $path"; exit 1; }
done
grep -Eqx '/(usr/)?lib/systemd/system/twofold\.service' "$work/contents" \
  || { echo "package lacks the systemd unit"; exit 1; }
mkdir "$work/root"
dpkg-deb -x "$work/twofold.deb" "$work/root"
dpkg-deb -e "$work/twofold.deb" "$work/control"
for script in postinst postrm prerm; do
  [ -x "$work/control/$script" ] || { echo "package lacks its $script script"; exit 1; }
done
grep -q 'systemd-sysusers' "$work/control/postinst" \
  || { echo "postinst does not create the twofold user"; exit 1; }
grep -qx 'u twofold .*' "$work/root/usr/lib/sysusers.d/twofold.conf" \
  || { echo "the sysusers.d file does not declare the twofold user"; exit 1; }
grep -qx /etc/twofold/twofold.toml "$work/control/conffiles" \
  || { echo "/etc/twofold/twofold.toml is not a conffile"; exit 1; }
grep -q 'deb-systemd-helper enable' "$work/control/postinst" \
  || { echo "postinst does not enable the unit"; exit 1; }
if grep -Eq 'deb-systemd-invoke (start|restart)' "$work/control/postinst"; then
  echo "postinst starts the service: it must wait for its configuration"; exit 1
fi
"$work/root/usr/bin/twofold" --version
# The console's pages are built into the binary; its password hashes come from the binary.
grep -q 'Twofold console' "$work/root/usr/bin/twofold" \
  || { echo "the packaged binary lacks the console's pages"; exit 1; }
printf 'a console password\n' | "$work/root/usr/bin/twofold" console-password --iterations 100000 \
  | grep -Eq '^pbkdf2-sha256\$100000\$' \
  || { echo "the packaged binary does not hash console passwords"; exit 1; }
unit_in_pkg=$(find "$work/root" -name twofold.service -path '*/systemd/system/*')
cmp "$unit_in_pkg" systemd/twofold.service
echo "package: $(grep -E '^ (Package|Version|Architecture|Depends|Recommends):' "$work/info" | tr -s ' ' | tr '\n' ';')"

echo "== systemd-analyze verify"
# verify needs the ExecStart binaries to exist: check a copy of the unit that runs the
# packaged binary.
mkdir "$work/unit"
sed "s|/usr/bin/twofold|$work/root/usr/bin/twofold|g" systemd/twofold.service \
  >"$work/unit/twofold.service"
# verify exits 0 on unknown or misspelled settings and only says so: any output fails.
if ! SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$work/unit/twofold.service" \
  >"$work/verify.log" 2>&1 || [ -s "$work/verify.log" ]; then
  cat "$work/verify.log"; exit 1
fi
echo "verify: ok"

echo "== systemd-analyze security (exposure <= $exposure_max)"
systemd-analyze security --offline=yes --no-pager systemd/twofold.service >"$work/security.log" 2>&1 \
  || { cat "$work/security.log"; exit 1; }
exposure=$(sed -n 's/.*Overall exposure level for twofold\.service: \([0-9.]*\).*/\1/p' "$work/security.log")
[ -n "$exposure" ] || { cat "$work/security.log"; echo "no exposure level found"; exit 1; }
echo "exposure: $exposure"
awk -v e="$exposure" -v max="$exposure_max" 'BEGIN { exit !(e <= max) }' \
  || { grep '✗' "$work/security.log"; echo "exposure $exposure is above $exposure_max"; exit 1; }

echo "== promtool"
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/twofold-rules.yml
promtool test rules deploy/prometheus/twofold-rules.test.yml

echo "== Grafana dashboard"
python3 deploy/check_dashboard.py deploy/grafana/twofold-dashboard.json \
  deploy/prometheus/twofold-rules.yml "$work/dashboard-rules.yml"
promtool check rules "$work/dashboard-rules.yml"

echo "== haproxy -c"
haproxy -c -f deploy/haproxy/haproxy.cfg

echo "== deploy checks passed"
