# PostgreSQL from Debian's packages, for machines that reach package registries but no image
# registry (this project's development machine and CI). It takes the official postgres image's
# variables (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB) and data path, so compose's postgres
# service runs it unchanged (tests/deploy/compose-local.yml swaps the image in).
ARG BASE=local/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER postgres
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
