# syntax=docker/dockerfile:1
#
# One image for both roles: `sluice ship` (DaemonSet) and `sluice aggregate`
# (Deployment); see deploy/README.md.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t sluice .
#   docker buildx build --platform linux/amd64,linux/arm64 ...   (cross-compiles, no emulation)

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" -o /out/sluice ./cmd/sluice

FROM scratch
# CA roots for https:// Elasticsearch addresses signed by a public CA.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/sluice /sluice
# Non-root by default (the aggregator). The shipper's DaemonSet overrides
# this with runAsUser 0 because host log files are readable by root only.
USER 65532:65532
EXPOSE 9600 9601
ENTRYPOINT ["/sluice"]
