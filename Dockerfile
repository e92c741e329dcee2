# streamd: one static binary on a distroless base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.buildVersion=${VERSION}" -o /out/streamd ./cmd/streamd \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/streamd /usr/local/bin/streamd
COPY configs/*.yaml /etc/streamd/
# The Pebble state directory, owned by the nonroot user (65532): a named volume mounted here starts
# with this ownership, so streamd can write to it. Kubernetes: set fsGroup 65532 (deploy/k8s).
COPY --from=build --chown=65532:65532 /out/state /var/lib/streamd
ENV STREAMD_STATE_DIR=/var/lib/streamd
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/streamd"]
CMD ["run", "-config", "/etc/streamd/fraud-pipeline.yaml"]
