#!/bin/sh
# Builds lunasentri/prometheus-local (configs/prometheus/Dockerfile) from the
# host's Prometheus binary, with no base image to pull: the binary, the
# shared libraries `ldd` lists and the dynamic loader are copied into a
# scratch image. On Debian/Ubuntu: apt-get install prometheus.
#
#   configs/prometheus/build-image.sh [TAG]    (default lunasentri/prometheus-local:latest)
#
# Environment: PROMETHEUS_BIN (default: /usr/bin/prometheus, else `command -v prometheus`).
set -eu

tag=${1:-lunasentri/prometheus-local:latest}
here=$(cd "$(dirname "$0")" && pwd)
bin=${PROMETHEUS_BIN:-}
if [ -z "$bin" ]; then
	if [ -x /usr/bin/prometheus ]; then bin=/usr/bin/prometheus; else bin=$(command -v prometheus || true); fi
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
	echo "build-image.sh: no prometheus binary (install Debian's prometheus package or set PROMETHEUS_BIN)" >&2
	exit 1
fi

ctx=$(mktemp -d "${TMPDIR:-/tmp}/lunasentri-prometheus-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT INT TERM
root=$ctx/rootfs
mkdir -p "$root/usr/bin" "$root/etc/prometheus" "$ctx/data"

cp -L "$bin" "$root/usr/bin/prometheus"

# Shared libraries and the loader, at the paths the binary asks for
# ("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and
# "/lib64/ld-linux-x86-64.so.2 (0x...)"). Symlinks are copied as files.
# ldd exits non-zero for a static binary ("not a dynamic executable"): then
# there is nothing to copy.
libs=$(ldd "$bin" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' || true)
for lib in $libs; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done

# The web UI (Debian's build serves it from /usr/share/prometheus/web) and
# the console templates, when the package has them.
if [ -d /usr/share/prometheus/web ]; then
	# Debian links the JavaScript libraries in from /usr/share/javascript:
	# copy them as files, without moment-timezone's 200 MB of raw tz data
	# (the UI loads moment-timezone-with-data.min.js only).
	mkdir -p "$root/usr/share/prometheus"
	tar -C /usr/share/prometheus -chf - --exclude=moment-timezone/data web | tar -C "$root/usr/share/prometheus" -xf -
fi
for d in consoles console_libraries; do
	if [ -d "/etc/prometheus/$d" ]; then
		cp -RL "/etc/prometheus/$d" "$root/etc/prometheus/$d"
	else
		mkdir -p "$root/etc/prometheus/$d"
	fi
done
# A config so the image starts on its own; compose mounts its own over it.
cp "$here/prometheus-compose.yml" "$root/etc/prometheus/prometheus.yml"
chmod -R a+rX "$root"

cp "$here/Dockerfile" "$ctx/Dockerfile"
docker build -q -t "$tag" "$ctx" >/dev/null
echo "built $tag from $bin"
