# Prometheus from Debian's package, for machines without an image registry; the official image's
# paths (config /etc/prometheus/prometheus.yml, data /prometheus) and port, so compose's
# prometheus service runs it unchanged (tests/deploy/compose-local.yml swaps the image in).
ARG BASE=local/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \
    && mkdir -p /prometheus && chown prometheus:prometheus /prometheus
USER prometheus
EXPOSE 9090
ENTRYPOINT ["prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.listen-address=:9090"]
