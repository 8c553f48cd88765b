# The deploy-steps image: the database image (its `postgres` user, pgbench and psql) plus Node.js and
# this project's code, so that the schema migrations and the post-deploy benchmark run inside a
# Kubernetes cluster (components/platform/kubernetes/deploy-step.ts) with the same code as elsewhere.
# Built from the repository's root, after the database image:
#   docker build -f images/deploy-steps.Dockerfile --build-arg DATABASE_IMAGE=REGISTRY/dpc-postgres:pg17 \
#     -t REGISTRY/dpc-deploy-steps:pg17 .
ARG DATABASE_IMAGE
ARG NODE_IMAGE=node:22-bookworm-slim

# The project with its production dependencies, installed where npm is.
FROM ${NODE_IMAGE} AS app
WORKDIR /opt/dpc
COPY package.json package-lock.json ./
# No install scripts (@pulumi/kubernetes' would fetch its provider plugin, unused here) but esbuild's (tsx).
RUN npm ci --omit=dev --ignore-scripts && npm rebuild esbuild && npm cache clean --force
COPY tsconfig.json ./
COPY components/ components/
COPY sql/ sql/
COPY benchmarks/ benchmarks/
COPY monitoring/ monitoring/
COPY scripts/deploy-step.ts scripts/deploy-step.ts

FROM ${DATABASE_IMAGE}
# Node's binary only (glibc, as the Debian of the Citus image); npm is not needed at run time.
COPY --from=app /usr/local/bin/node /usr/local/bin/node
COPY --from=app /opt/dpc /opt/dpc
WORKDIR /opt/dpc
# The platform runs it as `postgres` (kubernetesPostgresUid); the code is read-only to it.
USER postgres
ENTRYPOINT ["/usr/local/bin/node", "--import=tsx", "/opt/dpc/scripts/deploy-step.ts"]
