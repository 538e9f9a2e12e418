# reconlight as a container: `docker build -t reconlight .` from the repository's root.
# The build stage compiles the release binary (librdkafka is built from source by the
# rdkafka crate with the C compiler in the Rust image); the runtime stage is Debian slim
# with CA certificates and time zone data, running as an unprivileged user.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p reconlight \
 && strip target/release/reconlight \
 && cp target/release/reconlight /usr/local/bin/reconlight

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 reconlight \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/reconlight --create-home reconlight
COPY --from=build /usr/local/bin/reconlight /usr/local/bin/reconlight
USER 10001:10001
WORKDIR /var/lib/reconlight
# The API, the page, the webhooks, /metrics, /healthz and /readyz ([server] listen).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/reconlight"]
CMD ["run", "--config", "/etc/reconlight/reconlight.toml"]
