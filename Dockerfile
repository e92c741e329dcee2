# streamd: one static binary on a distroless base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.buildVersion=${VERSION}" -o /out/streamd ./cmd/streamd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/streamd /usr/local/bin/streamd
COPY configs/ /etc/streamd/
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/streamd"]
CMD ["run", "-config", "/etc/streamd/fraud-pipeline.yaml"]
