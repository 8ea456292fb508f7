# The lucid image: one static binary, used by the discovery Deployment (`lucid install`),
# the injected istio-proxy (`lucid sidecar`) and istio-init (`lucid iptables`) containers.
#   docker build -t ghcr.io/lucid-mesh/lucid:dev --build-arg COMMIT=$(git rev-parse HEAD) .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/lucid-mesh/lucid/internal/version.Version=${VERSION} -X github.com/lucid-mesh/lucid/internal/version.Commit=${COMMIT}" \
      -o /out/lucid ./cmd/lucid

# Static: no libc, no shell. Containers choose their user (the sidecar runs as 1337,
# istio-init as 0); the default is distroless' nonroot.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/lucid /usr/local/bin/lucid
ENTRYPOINT ["/usr/local/bin/lucid"]
