# One image for every backend service (web, images, releases, notifier); stack.yml chooses the service with
# `command`, e.g. ["backend/images/service.ts"]. Node 24 runs the TypeScript sources directly (type
# stripping), so there is no build stage: the image holds the sources, production dependencies and nothing else.
#
#   docker build -t ghcr.io/vtta/backend:0.1.0 .
#
# Pinned to a release (matching the project's Node); bump deliberately, never `latest`.
# No `# syntax=` line: it makes BuildKit pull a frontend image first; the built-in frontend of Docker 20.10+
# reads everything below (RUN --mount included), also where nothing can be pulled (`npm run swarm:up`).

# ---- deps: production dependencies only, cached until package.json or package-lock.json change ----
FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# --ignore-scripts: every package with an install script is a dev dependency; sharp ships prebuilt
# binaries as optional @img/* packages (glibc builds, hence bookworm rather than alpine).
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund
# Fail the build, not the images service at runtime, when sharp has no binary for this platform.
RUN node -e "import('sharp').then(() => {}, (e) => { console.error(e); process.exit(1) })"

# ---- runtime ----
FROM node:24.21.0-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HTTP_PORT=8080 \
    INTERNAL_HTTP_PORT=9090
WORKDIR /app
# Owned by root and not writable by the `node` user; stack.yml also mounts the root filesystem read-only.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY shared ./shared
COPY backend ./backend
USER node
EXPOSE 8080
# Readiness, as in stack.yml (which sets its own timings), on the internal port (never published; the public
# port serves no /readyz); uses Node's fetch, no curl in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.INTERNAL_HTTP_PORT||9090)+'/readyz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The runtime handles SIGTERM itself: stop accepting requests, drain NATS, exit 0 within SHUTDOWN_GRACE_MS.
# stack.yml adds `init: true`, so tini is PID 1, forwards the signal and reaps zombies.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node"]
CMD ["backend/web/service.ts"]
