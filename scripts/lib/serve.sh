# Sourced by the benchmark scripts that run `strata serve`.

# wait_for_serve PORT LOG: waits (10 s at most) until the `strata serve` on 127.0.0.1:PORT
# answers /healthz; otherwise fails, naming LOG (the service's output).
wait_for_serve() {
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "strata serve did not answer on 127.0.0.1:$1 within 10 s; see $2" >&2
    return 1
}

# write_bench_config WORK PORT: the benchmarks' `strata serve` configuration in
# WORK/strata.toml: new objects on the hot tier, data under WORK/data, no periodic pass
# during a run, statistics flushed every 2 s.
write_bench_config() {
    cat > "$1/strata.toml" <<TOML
default_tier = "hot"
[server]
listen = "127.0.0.1:$2"
data_dir = "$1/data"
[rules]
demotion_interval = "1h"
[tracking]
flush_interval = "2s"
TOML
}
