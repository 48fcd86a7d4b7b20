# syntax=docker/dockerfile:1
# Production dependencies only; better-sqlite3 is built here against this Node
# (node:22-bookworm has python3, make and g++; the runtime image has none).
FROM node:22-bookworm AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# Build: compile the TypeScript with the dev dependencies.
FROM node:22-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY scripts ./scripts
COPY bench ./bench
COPY config ./config
COPY static ./static
RUN npm run build

# Runtime: only production modules, compiled code and the default config.
FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    NANOCDN_DATA_DIR=/var/nanocdn \
    NANOCDN_HOST=0.0.0.0 \
    NANOCDN_PORT=8080
WORKDIR /app
RUN groupadd --system nanocdn && useradd --system --gid nanocdn --home-dir /var/nanocdn nanocdn \
    && mkdir -p /var/nanocdn && chown nanocdn:nanocdn /var/nanocdn
COPY --from=build /app/package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/config ./config
COPY --from=build /app/static ./static
# `nanocdn` on PATH, as `npm install -g` would link it: `docker exec <c> nanocdn cleanup --dry-run`.
RUN chmod 0755 /app/dist/src/cli.js && ln -s /app/dist/src/cli.js /usr/local/bin/nanocdn
USER nanocdn
VOLUME /var/nanocdn
EXPOSE 8080
# Kept by Docker; podman/buildah keep it only when building with `--format docker` (OCI images have no HEALTHCHECK).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.NANOCDN_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM drains in-flight uploads (http.shutdownGrace) and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["nanocdn"]
CMD ["serve"]
