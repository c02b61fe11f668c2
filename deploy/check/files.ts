/**
 * The deploy files, by their path in a checkout: what `docker stack deploy -c stack.yml` reads (with the
 * config deploy/nats.conf), what `docker build .` reads, and the production catalogue that the edge and
 * `npm run nats-auth` read. Every problem starts with the file to fix.
 */
export const deployFiles = {
  stack: 'stack.yml',
  natsConf: 'deploy/nats.conf',
  catalogue: 'deploy/datacenters.production.json',
  dockerfile: 'Dockerfile',
  dockerignore: '.dockerignore',
} as const
