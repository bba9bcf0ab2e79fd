# WA SMILE: a multi-stage build. The first stage compiles the release
# binary; the second is a small Debian image holding only the binary, the
# message templates and the config, run as an unprivileged user.
#
#   docker build -t wa-smile .
#   docker run --rm -p 8080:8080 \
#     -e WA_SMILE__DATABASE__URL=postgres://wa_smile@db/wa_smile \
#     -e WA_SMILE__WHATSAPP__ACCESS_TOKEN=… -e WA_SMILE__WHATSAPP__APP_SECRET=… \
#     -e WA_SMILE__WHATSAPP__VERIFY_TOKEN=… -e WA_SMILE__WHATSAPP__PHONE_NUMBER_ID=… \
#     wa-smile
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY benches benches
COPY src src
COPY migrations migrations
COPY templates templates
COPY static static
COPY config config
RUN cargo build --release --locked --bin wa-smile \
 && strip target/release/wa-smile

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/wa-smile --create-home wa-smile
COPY --from=build /src/target/release/wa-smile /usr/local/bin/wa-smile
# Templates and config are compiled in; the copies are the operator's
# reference (and `--config /etc/wa-smile/production.toml` can layer over).
COPY templates /usr/share/wa-smile/templates
COPY config /etc/wa-smile
USER wa-smile
WORKDIR /var/lib/wa-smile
ENV WA_SMILE__SERVER__BIND=0.0.0.0:8080 \
    WA_SMILE__LOG__FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200' <&3"]
ENTRYPOINT ["/usr/local/bin/wa-smile"]
CMD ["serve"]
