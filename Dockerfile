# Plaza relay image: builds the release binary, then runs it as an unprivileged user with all state in
# the /data volume. Configure with PLAZA_* environment variables (see config/plaza.toml); at least
# PLAZA_PUBLIC_URL=https://your.domain. Put a TLS-terminating proxy in front (see docs/operations.md, "Behind a TLS-terminating reverse proxy").
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin plaza

FROM debian:bookworm-slim
# ca-certificates: the relay verifies TLS against the system roots. Versions follow the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin plaza \
    && mkdir -p /data \
    && chown plaza:plaza /data
COPY --from=build /src/target/release/plaza /usr/local/bin/plaza
COPY config/plaza.toml /etc/plaza/plaza.toml
ENV PLAZA_DATA_DIR=/data \
    PLAZA_LISTEN=0.0.0.0:8080
USER 10001:10001
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["plaza", "--config", "/etc/plaza/plaza.toml", "health"]
ENTRYPOINT ["plaza", "--config", "/etc/plaza/plaza.toml"]
CMD ["serve"]
