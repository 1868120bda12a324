#!/usr/bin/env bash
# Checks the container image as far as this machine allows. The Dockerfile's
# base images (golang, distroless) come from container registries, which the
# build machines cannot reach, so the full `docker build` cannot run here.
# What is checked instead, with Debian's buildah (no daemon, vfs storage):
#  1. the build stage's command: CGO_ENABLED=0 with the release -ldflags
#     gives a statically linked binary whose `shoal version` shows them;
#  2. the runtime stage, taken from the Dockerfile as written with its base
#     swapped for scratch (distroless static is scratch plus CA
#     certificates, tzdata and /etc/passwd) and the build stage's output for
#     that binary, builds; its user is 65532 (non-root) and its entrypoint
#     is /usr/bin/shoal.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

ldflags="-s -w -X github.com/shoal-cdn/shoal/buildinfo.Version=vcheck -X github.com/shoal-cdn/shoal/buildinfo.Revision=check -X github.com/shoal-cdn/shoal/buildinfo.Date=2026-01-01T00:00:00Z"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$work/shoal" ./cmd/shoal
if readelf -l "$work/shoal" | grep -q 'INTERP'; then
	echo "container: the CGO_ENABLED=0 binary is dynamically linked" >&2
	exit 1
fi
"$work/shoal" version | grep -qx 'shoal vcheck' || { echo "container: -ldflags -X version not applied" >&2; exit 1; }

# The runtime stage, from its FROM line to the end.
awk '/^FROM / { stage++ } stage == 2' Dockerfile |
	sed -e 's|^FROM gcr.io/distroless/static-debian12:nonroot$|FROM scratch|' \
		-e 's|^COPY --from=build /out/shoal |COPY shoal |' >"$work/Containerfile"
grep -q '^FROM scratch$' "$work/Containerfile" || { echo "container: runtime stage base is not distroless static" >&2; exit 1; }
grep -q '^COPY shoal /usr/bin/shoal$' "$work/Containerfile" || { echo "container: runtime stage does not copy the build stage's binary" >&2; exit 1; }
cp LICENSE "$work/"
store="$work/storage"
b() { buildah --storage-driver vfs --root "$store" --runroot "$work/run" "$@"; }
b bud --quiet -t localhost/shoal-check -f "$work/Containerfile" "$work" >/dev/null
user="$(b inspect --format '{{.OCIv1.Config.User}}' localhost/shoal-check)"
entry="$(b inspect --format '{{.OCIv1.Config.Entrypoint}}' localhost/shoal-check)"
[ "$user" = "65532:65532" ] || { echo "container: user $user, want 65532:65532" >&2; exit 1; }
[ "$entry" = '[/usr/bin/shoal]' ] || { echo "container: entrypoint $entry, want [/usr/bin/shoal]" >&2; exit 1; }
echo "container: static binary and runtime stage check out (user $user, entrypoint $entry)"
