# Plaza relay image: builds the release binary, runs it with data in /data.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin plaza

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/plaza /usr/local/bin/plaza
COPY config/plaza.toml /etc/plaza/plaza.toml
ENV PLAZA_DATA_DIR=/data PLAZA_LISTEN=0.0.0.0:8080
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["plaza", "--config", "/etc/plaza/plaza.toml"]
CMD ["serve"]
