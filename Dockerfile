# syntax=docker/dockerfile:1

# ---- build ----------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
# The whole workspace: migrations, prompts and web pages are embedded at compile time,
# and cargo needs every member's manifest. .dockerignore keeps target/ out.
COPY . .
RUN cargo build --release --locked \
 && install -m 0755 target/release/interviewd /usr/local/bin/interviewd

# ---- run ------------------------------------------------------------------
# libpq5: the PostgreSQL client library diesel links; ca-certificates: TLS to
# the model provider.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libpq5 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system interviewd \
 && useradd --system --gid interviewd --home-dir /data --shell /usr/sbin/nologin interviewd \
 && mkdir -p /data \
 && chown interviewd:interviewd /data
COPY --from=builder /usr/local/bin/interviewd /usr/local/bin/interviewd
USER interviewd
WORKDIR /data
VOLUME ["/data"]
ENV BIND=0.0.0.0 \
    PORT=3001 \
    DATABASE_URL=sqlite:///data/interviewd.db
EXPOSE 3001
ENTRYPOINT ["interviewd"]
CMD ["serve"]
