# Test-only stand-in for the official python:*-slim image (Docker Hub is out of reach here).
ARG BASE=django-swarm/debian:trixie
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# The machine reaches PyPI through a TLS proxy whose CA only the host trusts.
COPY host-ca-bundle.crt /etc/ssl/certs/host-ca-bundle.crt
ENV PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt \
    SSL_CERT_FILE=/etc/ssl/certs/host-ca-bundle.crt
