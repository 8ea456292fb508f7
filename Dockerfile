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

# istio-init runs `lucid iptables`, which applies Istio's rules with the iptables binaries
# (iptables-restore, -save; nft or legacy, detected as istio-iptables does). Debian 12's
# iptables is two multi-call binaries, five small libraries and the extension modules
# (about 3 MiB); they need glibc, nothing else. This stage collects exactly those files.
FROM debian:12-slim AS iptables
RUN apt-get update && apt-get install -y --no-install-recommends iptables && \
    lib=$(ls -d /usr/lib/*-linux-gnu | head -1) && \
    mkdir -p /out/usr/sbin "/out$lib" /out/run && \
    cp -a /usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi /out/usr/sbin/ && \
    cp -a "$lib/xtables" "/out$lib/" && \
    cp -a "$lib"/libxtables.so.12* "$lib"/libmnl.so.0* "$lib"/libnftnl.so.11* \
          "$lib"/libip4tc.so.2* "$lib"/libip6tc.so.2* "/out$lib/" && \
    cd /out/usr/sbin && \
    for t in iptables ip6tables; do for c in "$t" "$t-save" "$t-restore"; do \
      ln -s xtables-nft-multi "$c"; \
      ln -s xtables-nft-multi "$(echo "$c" | sed "s/^$t/$t-nft/")"; \
      ln -s xtables-legacy-multi "$(echo "$c" | sed "s/^$t/$t-legacy/")"; \
    done; done

# distroless base-nossl: glibc and nothing more (no shell, no package manager, no OpenSSL;
# lucid itself is static). It is the smallest base iptables runs on: about 20 MiB with
# iptables and lucid, against 80+ MiB for debian-slim with iptables installed. Containers
# choose their user (the sidecar runs as 1337, istio-init as 0); the default is nonroot.
# The test node (internal/testutil/kubenode) packs the same iptables files from the host's
# Debian 12 package into the image its pods run.
FROM gcr.io/distroless/base-nossl-debian12:nonroot
COPY --from=iptables /out/ /
COPY --from=build /out/lucid /usr/local/bin/lucid
ENTRYPOINT ["/usr/local/bin/lucid"]
