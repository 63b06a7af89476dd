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
# The bundle carries its dependencies; nothing from node_modules is needed at run time.
COPY --from=build /src/dist/pvc-guardian.mjs /src/dist/pvc-guardian.mjs.map ./dist/
# The mover's UID and GID (568), not distroless's 65532: the Kopia repository's files are written
# by the mover with mode 0600, and the server must read them.
USER 568:568
EXPOSE 8443
# The distroless entrypoint is node itself.
CMD ["--enable-source-maps", "dist/pvc-guardian.mjs", "serve"]
