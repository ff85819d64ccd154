#!/usr/bin/env bash
# Release builds (make release calls this):
#   packaging/build.sh [OUTDIR]            tarballs, .debs and SHA256SUMS in OUTDIR (default dist)
#   packaging/build.sh deb BINARY ARCH VERSION OUTDIR
#                                          only the .deb of a built binary (the packaging test uses it)
# The version is `git describe --tags --always --dirty`, or $VERSION. Needs
# cgo and gcc (mattn/go-sqlite3); arm64 is built when aarch64-linux-gnu-gcc
# is installed (apt-get install gcc-aarch64-linux-gnu), otherwise skipped
# with a note. The .deb is made with dpkg-deb alone, files owned by root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

# debversion turns a git describe string into a Debian version: digits
# first; a build that is not a v1.2.3 tag sorts below any release (0~git...).
debversion() {
	local v=${1#v}
	if [[ $v =~ ^[0-9]+(\.[0-9]+)*$ ]]; then
		echo "$v"
	elif [[ $v =~ ^([0-9]+(\.[0-9]+)*)-([0-9]+)-g([0-9a-f]+)(-dirty)?$ ]]; then
		echo "${BASH_REMATCH[1]}+git${BASH_REMATCH[3]}.${BASH_REMATCH[4]}${BASH_REMATCH[5]:++dirty}"
	else
		echo "0~git.${v//[^A-Za-z0-9.+~]/.}"
	fi
}

# deb BINARY ARCH VERSION OUTDIR: writes OUTDIR/ctibridge_<debversion>_<arch>.deb.
deb() {
	local bin=$1 arch=$2 version=$3 out=$4
	local dv stage
	dv=$(debversion "$version")
	stage=$(mktemp -d)
	chmod 0755 "$stage" # the package's ./ (mktemp makes it 0700)
	install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/lib/systemd/system" "$stage/usr/share/doc/ctibridge"
	install -d -m 0750 "$stage/etc/ctibridge"
	install -m 0755 "$bin" "$stage/usr/bin/ctibridge"
	# 0640 from the start: postinst gives the group to ctibridge.
	install -m 0640 "$here/ctibridge.yaml" "$stage/etc/ctibridge/ctibridge.yaml"
	install -m 0644 "$here/ctibridge.service" "$stage/usr/lib/systemd/system/ctibridge.service"
	install -m 0644 "$root/README.md" "$stage/usr/share/doc/ctibridge/README.md"
	for s in postinst prerm postrm; do install -m 0755 "$here/deb/$s" "$stage/DEBIAN/$s"; done
	echo /etc/ctibridge/ctibridge.yaml >"$stage/DEBIAN/conffiles"
	local size
	size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
	cat >"$stage/DEBIAN/control" <<CONTROL
Package: ctibridge
Version: $dv
Architecture: $arch
Maintainer: ctibridge maintainers <ctibridge@users.noreply.github.com>
Installed-Size: $size
Depends: libc6, adduser
Section: net
Priority: optional
Homepage: https://github.com/ctibridge/ctibridge
Description: Asterisk AMI / FreeSWITCH ESL to CRM webhooks bridge
 ctibridge runs beside an Asterisk or FreeSWITCH PBX and delivers its calls
 to CRMs as signed webhooks, with a REST API and an event stream. It keeps
 an outbox in a SQLite database in /var/lib/ctibridge.
CONTROL
	mkdir -p "$out"
	dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/ctibridge_${dv}_${arch}.deb" >/dev/null
	rm -rf "$stage"
	echo "$out/ctibridge_${dv}_${arch}.deb"
}

# build ARCH CC OUT: the static-ish cgo binary with the version stamped.
build() {
	local arch=$1 cc=$2 out=$3 version=$4 commit=$5 date=$6
	CGO_ENABLED=1 GOOS=linux GOARCH=$arch CC=$cc go build -C "$root" -trimpath \
		-ldflags "-s -w -X main.Version=$version -X main.Commit=$commit -X main.BuildDate=$date" \
		-o "$out" ./cmd/ctibridge
}

release() {
	local out=${1:-$root/dist}
	local version commit date
	version=${VERSION:-$(git -C "$root" describe --tags --always --dirty)}
	commit=$(git -C "$root" rev-parse --short=12 HEAD)
	# The commit's time, not now: the same commit builds the same stamp.
	date=$(git -C "$root" log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ)
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	local arches=(amd64) ccs=(gcc)
	if command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
		arches+=(arm64) ccs+=(aarch64-linux-gnu-gcc)
	else
		echo "build.sh: no aarch64-linux-gnu-gcc: skipping arm64 (apt-get install gcc-aarch64-linux-gnu)" >&2
	fi
	local files=()
	for i in "${!arches[@]}"; do
		local arch=${arches[$i]} name="ctibridge_${version}_linux_${arches[$i]}"
		local dir
		dir=$(mktemp -d)
		mkdir "$dir/$name"
		echo "build.sh: $name" >&2
		build "$arch" "${ccs[$i]}" "$dir/$name/ctibridge" "$version" "$commit" "$date"
		cp "$root/README.md" "$here/ctibridge.yaml" "$here/ctibridge.service" "$dir/$name/"
		tar -C "$dir" --owner=0 --group=0 --numeric-owner --sort=name --mtime="$date" -czf "$out/$name.tar.gz" "$name"
		files+=("$name.tar.gz")
		files+=("$(basename "$(deb "$dir/$name/ctibridge" "$arch" "$version" "$out")")")
		rm -rf "$dir"
	done
	(cd "$out" && sha256sum "${files[@]}" >SHA256SUMS && cat SHA256SUMS)
}

main() {
	case "${1:-}" in
	deb) shift; [ $# -eq 4 ] || { echo "usage: build.sh deb BINARY ARCH VERSION OUTDIR" >&2; exit 2; }; deb "$@" ;;
	*) release "$@" ;;
	esac
}

# One line, parsed whole before it runs: editing this file during a build
# cannot change what the build does.
main "$@"; exit $?
