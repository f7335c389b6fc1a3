# LunaSentri container image: the static binary on `scratch`, nothing to pull.
#
# The binary is built on the host (CGO_ENABLED=0, as `make build` does) and
# staged with the CA bundle and an empty data directory, so the build needs
# no base image, no registry and no network:
#
#   bin/docker/lunasentri            static binary (make build)
#   bin/docker/ca-certificates.crt   the host's CA bundle (Telegram over https)
#   bin/docker/data/                 empty; becomes /data owned by 65532
#
# `make docker` stages those files and runs `docker build` on the repository
# (.dockerignore sends only bin/docker/ to the daemon). The e2e test
# e2e/compose_test.go stages the same layout in a temporary directory.
#
# One image for every role: `server`, `agent` and the operator commands.
#   docker run --rm lunasentri:local version
#   docker run -d -v lunasentri-data:/data -p 8080:8080 -e LUNASENTRI_ADMIN_TOKEN=... \
#     lunasentri:local server -node-id node1 -data-dir /data -http-addr 0.0.0.0:8080 ...
#
# It runs as UID/GID 65532 (no /etc/passwd is needed). /data is created in
# the image owned by 65532, so a *named* volume mounted there starts out
# writable by it (Docker copies the ownership into an empty named volume).
# A bind mount keeps the host directory's owner: chown it to 65532 first.
# There is deliberately no VOLUME instruction: the agent and the operator
# commands use the same image and need no storage, and a declared volume
# would leave an anonymous volume behind for each of their containers. A
# server must be given its volume: -v NAME:/data.
#
# There is no shell or curl in the image. To probe a server, use the binary
# itself; `lunasentri status` exits non-zero unless the node answers
# GET /v1/status (configs/docker-compose.yml uses it as the health check).
FROM scratch

COPY bin/docker/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/docker/lunasentri /lunasentri
COPY --chown=65532:65532 bin/docker/data/ /data/

USER 65532:65532
# HTTP API and /metrics, Raft (TCP), gossip (TCP and UDP).
EXPOSE 8080/tcp 8300/tcp 8301/tcp 8301/udp
ENTRYPOINT ["/lunasentri"]
CMD ["help"]
