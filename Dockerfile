# Container image of the otelcol-o365 distribution:
#   docker build -t otelcol-o365 .        (or: buildah bud -t otelcol-o365 .)
#   docker run -e O365_TENANT_ID=… -e O365_CLIENT_ID=… -e O365_CLIENT_SECRET=… -e O365_ADMIN_TOKEN=… \
#     -v otelcol-o365:/var/lib/otelcol-o365 -p 13134:13134 otelcol-o365
# The build stage compiles the distribution with ocb (`make distribution`: a static binary, CGO_ENABLED=0;
# SQLite is modernc's pure-Go port). The image is the binary, CA certificates, /etc/passwd with its
# non-root user (10001, as the collector's images), the shipped config and the state volume — no shell,
# no HEALTHCHECK: probes belong to the orchestrator (GET :13134/readiness, health_check on :13133).
ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY . .
RUN make distribution \
 && mkdir -p /rootfs/etc /rootfs/tmp /state \
 && chmod 1777 /rootfs/tmp \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\notelcol-o365:x:10001:10001:otelcol-o365:/var/lib/otelcol-o365:/sbin/nologin\n' > /rootfs/etc/passwd \
 && printf 'root:x:0:\notelcol-o365:x:10001:\n' > /rootfs/etc/group

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /rootfs/ /
COPY --from=build --chown=10001:10001 /state /var/lib/otelcol-o365
COPY --from=build /src/_build/otelcol-o365 /otelcol-o365
COPY packaging/config.yaml /etc/otelcol-o365/config.yaml
USER 10001:10001
# The config's HTTP endpoints bind this address: probes and queries come from outside the container.
ENV O365_LISTEN_ADDRESS=0.0.0.0
# Watermarks, dedup ids, the event store, exports and raw records (packaging/config.yaml): keep them.
VOLUME ["/var/lib/otelcol-o365"]
WORKDIR /var/lib/otelcol-o365
# health_check, o365_readiness (/readiness, status page), o365_events (queries), Prometheus metrics
EXPOSE 13133 13134 13136 8888
ENTRYPOINT ["/otelcol-o365"]
CMD ["--config", "/etc/otelcol-o365/config.yaml"]
