# Shoal container image: one static binary on a distroless base, run as a
# non-root user. Build:
#   docker build -t shoal --build-arg VERSION=v1.0.0 --build-arg REVISION=$(git rev-parse HEAD) .
# Run (the subcommand and its flags follow the image name):
#   docker run --rm -p 7070:7070 shoal tracker --listen 0.0.0.0:7070
# Every flag has its env twin (SHOAL_TRACKER_LISTEN, …).

# ---- build: a static binary (no cgo) ----
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG REVISION=unknown
ARG DATE=unknown
RUN CGO_ENABLED=0 GOFLAGS=-trimpath go build \
      -ldflags "-s -w \
        -X github.com/shoal-cdn/shoal/buildinfo.Version=${VERSION} \
        -X github.com/shoal-cdn/shoal/buildinfo.Revision=${REVISION} \
        -X github.com/shoal-cdn/shoal/buildinfo.Date=${DATE}" \
      -o /out/shoal ./cmd/shoal \
 && /out/shoal version

# ---- run: distroless static, non-root ----
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/shoal /usr/bin/shoal
COPY LICENSE /usr/share/doc/shoal/LICENSE
# The peer's cache defaults to $HOME/.cache/shoal (/home/nonroot, owned by
# the non-root user); mount a volume there, or pass --cache, to keep it.
WORKDIR /home/nonroot
ENV SHOAL_PEER_LOG_FORMAT=json \
    SHOAL_TRACKER_LOG_FORMAT=json \
    SHOAL_ORIGIN_LOG_FORMAT=json \
    SHOAL_RELAY_LOG_FORMAT=json
USER 65532:65532
# tracker 7070, origin 8080, peer gateway 7171, peer/relay libp2p 4001 (TCP and UDP)
EXPOSE 7070 8080 7171 4001 4001/udp
ENTRYPOINT ["/usr/bin/shoal"]
CMD ["--help"]
