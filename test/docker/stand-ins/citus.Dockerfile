# Stand-in for citusdata/citus:13.0.x (PostgreSQL 17, Citus 13.0 installed): no registry is reachable
# here, so Citus is built from the vendored, pinned source tarball that the test puts into the build
# context as citus.tar.gz (test/docker/images.ts; never committed). Like the upstream image it has
# PostgreSQL under /usr/lib/postgresql/$PG_MAJOR and the postgres user, so images/Dockerfile runs
# unchanged on top of it.
ARG BASE_IMAGE=local/debian:trixie
FROM ${BASE_IMAGE} AS postgres
ENV PG_MAJOR=17
# Without the "main" cluster postgresql-common would create (Patroni makes its own data directory).
RUN set -eu; export DEBIAN_FRONTEND=noninteractive; apt-get update; \
    apt-get install -y --no-install-recommends postgresql-common; \
    sed -ri 's/^#?\s*create_main_cluster\b.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf; \
    apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}" libcurl4t64; \
    rm -rf /var/lib/apt/lists/*

# The build dependencies stay in this stage; only the installed files reach the image.
FROM postgres AS build
ARG CITUS_SHA256
RUN set -eu; export DEBIAN_FRONTEND=noninteractive; apt-get update; \
    apt-get install -y --no-install-recommends "postgresql-server-dev-${PG_MAJOR}" build-essential liblz4-dev \
      libzstd-dev libcurl4-openssl-dev libkrb5-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev libicu-dev
COPY citus.tar.gz /tmp/citus.tar.gz
RUN set -eu; test -n "${CITUS_SHA256}"; echo "${CITUS_SHA256}  /tmp/citus.tar.gz" | sha256sum -c -; \
    mkdir /tmp/citus; tar -xzf /tmp/citus.tar.gz -C /tmp/citus --strip-components=1; cd /tmp/citus; \
    ./configure --quiet PG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config" >/dev/null; \
    make -s -j"$(nproc)" >/dev/null; make -s install DESTDIR=/citus-install >/dev/null

FROM postgres
COPY --from=build /citus-install/ /
# Fail the build, not the first container, when a library citus.so links is missing.
RUN set -eu; lib="/usr/lib/postgresql/${PG_MAJOR}/lib/citus.so"; test -f "$lib"; \
    if ldd "$lib" | grep -q 'not found'; then ldd "$lib"; exit 1; fi; \
    test -f "/usr/share/postgresql/${PG_MAJOR}/extension/citus.control"
ENV PATH=/usr/lib/postgresql/17/bin:$PATH
