# fhir-server: FHIR R4 at http://HOST:8080/fhir. Used by docker-compose.yml (with MongoDB).
#
#   docker build -t fhir-server .
#   docker run --rm -p 127.0.0.1:8080:8080 -v fhir-data:/var/lib/fhir-server fhir-server
#
# The server runs with SMART authorization (--auth smart, the default): every FHIR request needs
# a bearer token. Register users and clients with `docker run … fhir-server users add …` /
# `clients add …` on the same volume (README, "Authorization"). Tokens and passwords must travel
# over TLS: publish the port behind a TLS-terminating proxy and set FHIR_SERVER_BASE_URL to the
# public https://…/fhir URL.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: wheels of the locked dependencies (hash-checked) and of the server, into a venv -----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY requirements.lock ./
RUN python -m pip wheel --require-hashes --wheel-dir /wheels -r requirements.lock
COPY pyproject.toml README.md ./
COPY fhir_server ./fhir_server
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/fhir-server \
 && /opt/fhir-server/bin/pip install --no-index --no-deps /wheels/*.whl \
 && /opt/fhir-server/bin/pip check

# --- runtime: the venv only, no compiler, no pip cache, a non-root user ------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 fhir \
 && useradd --system --uid 10001 --gid fhir --home-dir /var/lib/fhir-server \
            --no-create-home --shell /usr/sbin/nologin fhir \
 && mkdir -p /var/lib/fhir-server \
 && chown fhir:fhir /var/lib/fhir-server \
 && chmod 0700 /var/lib/fhir-server
COPY --from=build /opt/fhir-server /opt/fhir-server
# The server's own profiles, terminology and validation rule set (data, read at start-up).
COPY profiles/fsh-generated/resources /opt/fhir-server/share/profiles
COPY profiles/rulesets /opt/fhir-server/share/rulesets
COPY terminology /opt/fhir-server/share/terminology
COPY mappings/v2-to-fhir /opt/fhir-server/share/mappings/v2-to-fhir
ENV PATH=/opt/fhir-server/bin:$PATH \
    FHIR_SERVER_CONFORMANCE_DIRS=/opt/fhir-server/share/profiles:/opt/fhir-server/share/terminology \
    FHIR_SERVER_VALIDATION_RULES=/opt/fhir-server/share/rulesets/telemedicine.json \
    FHIR_SERVER_HL7_MAPPINGS=/opt/fhir-server/share/mappings/v2-to-fhir \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FHIR_SERVER_DATA_DIR=/var/lib/fhir-server \
    FHIR_SERVER_PORT=8080
VOLUME ["/var/lib/fhir-server"]
WORKDIR /var/lib/fhir-server
USER 10001:10001
EXPOSE 8080
# No curl in the slim image: the check is Python's urllib (any error or non-2xx status fails).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('FHIR_SERVER_PORT', '8080') + '/fhir/metadata', timeout=4).close()"]
CMD ["fhir-server", "serve", "--host", "0.0.0.0"]
