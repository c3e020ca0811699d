#!/bin/sh
# build.sh OUTDIR: builds OUTDIR/portmapd_VERSION_ARCH.deb with Go and
# Debian's dpkg-deb and dpkg-shlibdeps (package dpkg-dev), no debhelper:
# a staging tree laid out as Debian's rpcbind package lays out its files,
# then DEBIAN/ with control, conffiles, maintainer scripts and md5sums.
# Run from the top of the repository; `make deb` passes GO, VERSION and
# LDFLAGS.
set -eu

out=${1:?usage: build.sh OUTDIR}
GO=${GO:-go}
VERSION=${VERSION:?VERSION must be set}
LDFLAGS=${LDFLAGS:-}
src=cmd/portmapd/debian

for tool in dpkg-deb dpkg-shlibdeps gzip; do
	command -v $tool >/dev/null || { echo "build.sh: $tool missing (apt-get install dpkg-dev)" >&2; exit 1; }
done
arch=$(dpkg --print-architecture)
# Timestamps from the commit, so that two builds of one commit match.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

umask 022
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/DEBIAN" "$root/usr/sbin" "$root/usr/bin" "$root/sbin" \
	"$root/lib/systemd/system" "$root/usr/lib/tmpfiles.d" "$root/etc/default" \
	"$root/usr/share/man/man8" "$root/usr/share/doc/portmapd"

# The binary: dynamically linked against libc (the cgo resolver and user
# lookup, as every Debian daemon), position independent, stripped, with
# full RELRO, as Debian's hardening flags ask of C daemons.
CGO_ENABLED=1 $GO build -trimpath -buildmode=pie \
	-ldflags "$LDFLAGS -s -w -linkmode=external -extldflags '-Wl,-z,relro -Wl,-z,now'" \
	-o "$root/usr/sbin/portmapd" ./cmd/portmapd

# rpcbind and rpcinfo at the paths Debian's rpcbind ships them: the binary
# acts by the name it is run as. The same paths, not their /usr aliases,
# so that dpkg hands the files over instead of deleting them with rpcbind.
ln -s /usr/sbin/portmapd "$root/sbin/rpcbind"
ln -s portmapd "$root/usr/sbin/rpcinfo"
ln -s ../sbin/portmapd "$root/usr/bin/rpcinfo"

install -m 0644 $src/rpcbind.socket $src/rpcbind.service "$root/lib/systemd/system/"
# portmap.service: the old name, an alias as Debian's rpcbind ships it.
ln -s rpcbind.service "$root/lib/systemd/system/portmap.service"
install -m 0644 $src/tmpfiles.conf "$root/usr/lib/tmpfiles.d/portmapd.conf"
install -m 0644 $src/rpcbind.default "$root/etc/default/rpcbind"

# Man pages from the commands; rpcbind(8) and rpcinfo(8), which the units
# and scripts name, are the pages of the commands those names run.
$GO run ./internal/genman --dir "$work/man"
for page in "$work"/man/*.8; do
	gzip -9n <"$page" >"$root/usr/share/man/man8/$(basename "$page").gz"
done
ln -s portmapd-serve.8.gz "$root/usr/share/man/man8/rpcbind.8.gz"
ln -s portmapd-info.8.gz "$root/usr/share/man/man8/rpcinfo.8.gz"

# Documentation: a changelog entry for this build and the copyright file
# with the licences of the Go modules linked into the binary.
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
printf 'portmapd (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- portmapd developers <dev@portmapd.invalid>  %s\n' \
	"$VERSION" "$commit" "$date" | gzip -9n >"$root/usr/share/doc/portmapd/changelog.gz"
{
	cat $src/copyright
	$GO version -m "$root/usr/sbin/portmapd" | awk '$1 == "dep" { print $2, $3 }' | while read -r mod ver; do
		dir=$($GO mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
		for lic in "$dir"/LICENSE* "$dir"/COPYING*; do
			[ -f "$lic" ] || continue
			printf '\n%s %s (%s):\n\n' "$mod" "$ver" "$(basename "$lic")"
			# Debian keeps the Apache licence once, in common-licenses.
			if grep -q 'Apache License' "$lic" && grep -q 'Version 2.0' "$lic"; then
				echo "    Apache License, Version 2.0: see /usr/share/common-licenses/Apache-2.0."
			else
				sed 's/^/    /; s/[[:space:]]*$//' "$lic"
			fi
		done
	done
} >"$root/usr/share/doc/portmapd/copyright"

# DEBIAN/: the libc dependency as dpkg-shlibdeps computes it (it wants a
# debian/control to read, so it runs in a scratch source tree).
mkdir -p "$work/src/debian"
printf 'Source: portmapd\n\nPackage: portmapd\nArchitecture: any\n' >"$work/src/debian/control"
depends=$(cd "$work/src" && dpkg-shlibdeps -O -e"$root/usr/sbin/portmapd" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "build.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
	$src/control >"$root/DEBIAN/control"
install -m 0644 $src/conffiles "$root/DEBIAN/conffiles"
install -m 0755 $src/postinst $src/prerm $src/postrm "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
	xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
deb="$out/portmapd_${VERSION}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
