# dynaprice container image: one static binary on distroless, run as nonroot.
#
#   docker build -t dynaprice:local .
#   docker run --rm dynaprice:local version
#
# The image's ENTRYPOINT is the binary; the role is the first argument
# (serve, engine, api, migrate, loadgen). See docs/DEPLOY.md.
#
# There is no HEALTHCHECK: distroless has no shell, curl or wget to run one.
# Kubernetes probes /healthz and /readyz over HTTP from the kubelet; with
# Compose, watch `docker compose ps` and the services' logs, or curl the
# published ports (docs/DEPLOY.md).
#
# deploy/deploy_test.go checks that the builder's Go version matches the go
# line of go.mod (major.minor) and that ./cmd/dynaprice is what gets built.

# ---- build ------------------------------------------------------------------
FROM golang:1.26 AS build
WORKDIR /src

# Modules first, in their own layer: it is rebuilt only when go.mod or
# go.sum change, not on every source edit.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

# An empty data directory for `serve`, copied below with nonroot ownership so
# that a named volume mounted over it starts out writable.
RUN mkdir -p /out/dynaprice-data

COPY . .

# VERSION ends up in `dynaprice version`
# (docker build --build-arg VERSION=$(git describe --tags --always) .).
ARG VERSION=dev
# The dashboard is embedded from internal/dashboard/dist (committed, built
# from web/ with npm); the Go build does not need web/ or Node.
RUN CGO_ENABLED=0 go build -trimpath \
        -ldflags "-s -w -X github.com/dynaprice/dynaprice/internal/cli.Version=${VERSION}" \
        -o /dynaprice ./cmd/dynaprice

# ---- run --------------------------------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /dynaprice /dynaprice
COPY --from=build --chown=65532:65532 /out/dynaprice-data /home/nonroot/dynaprice-data
# nonroot is uid/gid 65532, home /home/nonroot. `serve` keeps its SQLite
# store in ./dynaprice-data by default, so in /home/nonroot/dynaprice-data;
# mount a volume there to keep it. engine, api, migrate and loadgen write
# nothing locally.
USER nonroot:nonroot
WORKDIR /home/nonroot
# 8080: HTTP API and WebSocket (api, serve). 9090: engine metrics/health.
EXPOSE 8080 9090
ENTRYPOINT ["/dynaprice"]
CMD ["help"]
