# portalmail: one static binary, `portalmail process` or `portalmail send`.
#   docker build -t portalmail .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/portalmail ./cmd/portalmail

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/portalmail /usr/local/bin/portalmail
USER nonroot:nonroot
# 9090: process stage's /metrics, /healthz, /readyz; 9091: the send stage's.
EXPOSE 9090 9091
ENTRYPOINT ["/usr/local/bin/portalmail"]
CMD ["help"]
