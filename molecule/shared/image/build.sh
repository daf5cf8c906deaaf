#!/usr/bin/env bash
# Build the base image of the Molecule containers locally, because no container
# registry can be reached: debootstrap Debian bookworm (minbase) into a folder,
# add the harness's test resources, and `docker import` it. An image whose
# label matches the hash of these inputs is reused, so later runs skip this.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
image=${REFORGE_TEST_IMAGE:-reforge-test:bookworm}
suite=bookworm
docker=${DOCKER:-docker}

# The host's extra CA certificates go into the image: on a network that
# inspects TLS, pip inside the containers fails without them.
shopt -s nullglob
extra_cas=(/usr/local/share/ca-certificates/*.crt /usr/local/share/ca-certificates/*/*.crt)
shopt -u nullglob

inputs=$(cat "$here/build.sh" "$here/packages.txt" "$here/run.sh" "$here/jupyter-standin" \
    ${extra_cas[@]+"${extra_cas[@]}"} | sha256sum | cut -c1-16)
current=$("$docker" image inspect -f '{{ index .Config.Labels "org.reforge.inputs" }}' "$image" 2>/dev/null || true)
if [ "$current" = "$inputs" ]; then
    echo "image: reusing $image (inputs $inputs)"
    exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "image: debootstrap needs root or sudo" >&2; exit 1; }
    as_root=(sudo --preserve-env=http_proxy,https_proxy,HTTP_PROXY,HTTPS_PROXY,no_proxy,NO_PROXY)
fi
if ! command -v debootstrap >/dev/null; then
    echo "image: installing debootstrap from Debian's packages"
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# On a Debian host, use the mirror its apt already uses; elsewhere, debootstrap's default.
mirror=
if grep -qx 'ID=debian' /etc/os-release 2>/dev/null; then
    mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -v -e security -e '^$' | head -n 1 || true)
    if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
        mirror=$(awk '$1 == "deb" && $0 !~ /security/ { print $2; exit }' /etc/apt/sources.list || true)
    fi
fi

rootfs=$(mktemp -d "${TMPDIR:-/var/tmp}/reforge-rootfs.XXXXXX")
cleanup() { "${as_root[@]}" rm -rf --one-file-system "$rootfs"; }
trap cleanup EXIT

include=$(grep -v -e '^#' -e '^$' "$here/packages.txt" | paste -sd, -)
echo "image: debootstrap $suite ($include) ${mirror:-default mirror}"
start=$SECONDS
"${as_root[@]}" debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" ${mirror:+"$mirror"} \
    >"$rootfs.log" 2>&1 || { tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"

in_root() { "${as_root[@]}" chroot "$rootfs" "$@"; }
for ca in ${extra_cas[@]+"${extra_cas[@]}"}; do
    "${as_root[@]}" install -m 0644 "$ca" "$rootfs/usr/local/share/ca-certificates/$(basename "$ca")"
done
in_root update-ca-certificates >/dev/null
# Paperspace-like: /notebooks and a read-only /datasets; /storage exists only where a
# scenario mounts its volume, so laptop-like containers have none, as laptops do.
in_root mkdir -p /notebooks /datasets /run/sshd
"${as_root[@]}" install -m 0755 "$here/run.sh" "$rootfs/run.sh"
"${as_root[@]}" install -m 0755 "$here/jupyter-standin" "$rootfs/usr/local/bin/jupyter-standin"
# Laptop-like: a non-root user with a normal home directory.
in_root useradd --create-home --shell /bin/bash --uid 1000 dev
# Paperspace images run a conda Python that pip may write to; so does this one.
in_root sh -c 'rm -f /usr/lib/python3*/EXTERNALLY-MANAGED'
"${as_root[@]}" rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/archives/"*.deb

"${as_root[@]}" tar -C "$rootfs" --numeric-owner -c . | "$docker" import \
    --change "LABEL org.reforge.inputs=$inputs" \
    --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "image: built $image in $((SECONDS - start)) s"
