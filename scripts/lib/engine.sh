# shellcheck shell=bash
# The container engine for the Molecule tests: the Docker engine when one
# answers; otherwise Podman's Docker-compatible socket, started here and
# stopped, by its PID, when the caller exits.

REFORGE_PODMAN_PID=

reforge_engine_stop() {
    if [ -n "$REFORGE_PODMAN_PID" ]; then
        kill "$REFORGE_PODMAN_PID" 2>/dev/null || true
        wait "$REFORGE_PODMAN_PID" 2>/dev/null || true
        REFORGE_PODMAN_PID=
    fi
}

reforge_engine() {
    local python=$1 state conf sock tries
    if [ "${REFORGE_ENGINE:-auto}" != podman ] && "$python" -c 'import docker; docker.from_env().ping()' 2>/dev/null; then
        echo "engine: Docker engine answers${DOCKER_HOST:+ at $DOCKER_HOST}"
        command -v docker >/dev/null && export DOCKER=docker || export DOCKER=podman
        return 0
    fi
    if ! command -v podman >/dev/null; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "engine: no Docker engine answers and Podman is not installed (apt-get install podman runc)" >&2
            return 1
        fi
        echo "engine: no Docker engine answers; installing Podman from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null
    fi
    state=$(mktemp -d "${TMPDIR:-/tmp}/reforge-podman.XXXXXX")
    # Some hosts cannot raise resource limits for containers: ask for no more
    # than this shell already has, and use runc, which honours that.
    conf="$state/containers.conf"
    {
        echo '[containers]'
        echo "default_ulimits = [\"nofile=$(ulimit -Sn):$(ulimit -Hn)\"]"
        if command -v runc >/dev/null; then
            echo '[engine]'
            echo 'runtime = "runc"'
        fi
    } >"$conf"
    export CONTAINERS_CONF=$conf
    sock="$state/podman.sock"
    podman system service --time=0 "unix://$sock" >"$state/service.log" 2>&1 &
    REFORGE_PODMAN_PID=$!
    trap reforge_engine_stop EXIT
    export DOCKER_HOST="unix://$sock" DOCKER=podman
    for tries in $(seq 50); do
        if "$python" -c 'import docker; docker.from_env().ping()' 2>/dev/null; then
            echo "engine: Podman socket at $sock (PID $REFORGE_PODMAN_PID)"
            return 0
        fi
        sleep 0.2
    done
    echo "engine: Podman's socket did not answer after $tries tries; see $state/service.log" >&2
    return 1
}
