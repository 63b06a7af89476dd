# pvc-guardian: the esbuild bundle on distroless Node 24, non-root as the VolSync mover's UID.
# Build: docker build -t pvc-guardian .

FROM node:24-bookworm-slim AS build
WORKDIR /src
# Dependencies first, so a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json build.mjs ./
COPY webhook ./webhook
RUN npm run build

FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
# The bundle carries its dependencies; nothing from node_modules is needed at run time. dist/ holds
# the entry point, dist/chunks/ the code only some deployments load (@kubernetes/client-node, for a
# kubeconfig user with an exec plugin), and the source maps of both.
COPY --from=build /src/dist/ ./dist/
# The mover's UID and GID (568), not distroless's 65532: the Kopia repository's files are written
# by the mover with mode 0600, and the server must read them.
USER 568:568
EXPOSE 8443
# The distroless entrypoint is node itself. Source maps are shipped but not enabled:
# --enable-source-maps makes Node read and keep the whole map (7 MB of JSON for 2 MB of code) from
# start-up, which measured +64 to +87 MiB of RSS on a replica that needs about 110 (bench/memory). The
# stack traces name the bundle's lines; map one offline against dist/*.map, or, while debugging,
# add --enable-source-maps to the Deployment's NODE_OPTIONS.
CMD ["dist/pvc-guardian.mjs", "serve"]
