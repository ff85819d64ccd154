# ctibridge: cgo is needed for SQLite (mattn/go-sqlite3).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -o /out/ctibridge ./cmd/ctibridge

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/ctibridge --create-home ctibridge \
 && chmod 0700 /var/lib/ctibridge
COPY --from=build /out/ctibridge /usr/local/bin/ctibridge
# The database (webhook secrets, key hashes, callers' numbers) is created
# 0600 in this owner-only directory; a new named volume copies its mode.
USER ctibridge
WORKDIR /var/lib/ctibridge
EXPOSE 8080
# Healthy when /readyz answers 200 (PBX link up, store writable); no shell needed.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s CMD ["ctibridge", "healthcheck", "--config", "/etc/ctibridge/ctibridge.yaml"]
ENTRYPOINT ["ctibridge"]
CMD ["serve", "--config", "/etc/ctibridge/ctibridge.yaml"]
