/**
 * The images, made on this machine because nothing can be pulled here:
 * - the base images the Dockerfile and stack.yml name, under those names: `node:<v>-bookworm-slim` is
 *   Debian bookworm (debootstrap, minbase) with the project's Node binary (the npm package `node`), npm,
 *   and the `node` user (uid 1000) as in the official image; the NATS image is the same Debian with
 *   Debian's nats-server as its entrypoint (NATS_IMAGE in stack.yml; production pins the official one);
 * - the backend image, built from the real Dockerfile by a builder engine in this machine's own network
 *   namespace (the npm registry is reachable only from here);
 * - all pushed to a local registry (Debian's docker-registry) on the bridge, from which every node pulls,
 *   as production nodes pull from ghcr.io;
 * - the monitoring images (monitoringImages): the same Debian with Debian's prometheus,
 *   prometheus-alertmanager and prometheus-node-exporter packages, laid out as the official images are.
 * The base system trusts what this machine trusts (its CA bundle, also npm's cafile): the machine reaches
 * the registries through a TLS-inspecting proxy, and the official images would need the same.
 */
import { spawn } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import { attempt, docker, dockerSucceeds, run } from './command.ts'
import { bridge, registryHost } from './topology.ts'
import { dockerdArgs, type Engine } from './engines.ts'
import { projectRoot } from '../platform-specs.ts'

export type Builder = Engine

export const builderOf = (swarmDir: string): Builder => ({
  dc: 'builder',
  dir: join(swarmDir, 'builder'),
  socket: join(swarmDir, 'builder', 'docker.sock'),
  dockerHost: `unix://${join(swarmDir, 'builder', 'docker.sock')}`,
})

export const backendImage = (version: string) => ({
  production: `ghcr.io/vtta/backend:${version}`,
  local: `${registryHost}/vtta/backend:${version}`,
})

/** The Node base image the Dockerfile builds FROM (its first FROM line). */
export function dockerfileBase(): string {
  const from = /^FROM\s+(\S+)/m.exec(readFileSync(join(projectRoot, 'Dockerfile'), 'utf8'))
  if (!from?.[1]) throw new Error('Dockerfile: no FROM line')
  return from[1]
}

/**
 * Debian's base system, kept across swarm:down in .local/cache (a download cache, like npm's: a fresh
 * debootstrap takes minutes); `rm -rf .local/cache` removes it.
 */
export const rootfsCache = join(projectRoot, '.local', 'cache', 'debian-bookworm-minbase')

function debianRootfs(): string {
  const rootfs = rootfsCache
  if (existsSync(join(rootfs, '.complete'))) return rootfs
  rmSync(rootfs, { recursive: true, force: true })
  console.log('debootstrap: Debian bookworm (minbase) …')
  run('debootstrap', [
    '--variant=minbase',
    '--include=ca-certificates,wget',
    'bookworm',
    rootfs,
    'http://deb.debian.org/debian',
  ])
  rmSync(join(rootfs, 'var', 'cache', 'apt', 'archives'), { recursive: true, force: true })
  rmSync(join(rootfs, 'var', 'lib', 'apt', 'lists'), { recursive: true, force: true })
  writeFileSync(join(rootfs, '.complete'), '')
  return rootfs
}

function importTree(builder: Builder, tree: string, name: string, changes: string[]): void {
  const change = changes.flatMap((c) => ['--change', c])
  run(
    'sh',
    [
      '-c',
      'tree=$1; shift; tar -C "$tree" --exclude=./.complete -c . | docker import "$@"',
      'sh',
      tree,
      ...change,
      '-',
      name,
    ],
    {
      env: { ...process.env, DOCKER_HOST: builder.dockerHost },
    }
  )
}

/**
 * A root filesystem copied with every mode and owner: fs.cpSync drops a directory's sticky and
 * world-writable bits, and /tmp at 0755 made the services' tmpfs /tmp unwritable (runc gives a tmpfs the
 * mode of the directory it covers).
 */
const copyTree = (from: string, to: string) => run('cp', ['-a', from, to])

export function makeBaseImages(swarmDir: string, builder: Builder): { node: string; nats: string } {
  const rootfs = debianRootfs()
  const nodeName = dockerfileBase()
  const nodeVersion = /^node:(\d+\.\d+\.\d+)/.exec(nodeName)?.[1]
  if (process.version !== `v${nodeVersion}`)
    throw new Error(`the Dockerfile builds FROM ${nodeName} but this Node is ${process.version}`)
  // Node base: Debian + this Node + npm + the `node` user, as the official image.
  const nodeTree = join(swarmDir, 'tree-node')
  rmSync(nodeTree, { recursive: true, force: true })
  copyTree(rootfs, nodeTree)
  cpSync(process.execPath, join(nodeTree, 'usr/local/bin/node'))
  // This machine's npm (the official image ships the npm of its Node release; any npm 10+ will do).
  const npmCli = process.env.npm_execpath ?? realpathSync(run('sh', ['-c', 'command -v npm']).trim())
  cpSync(dirname(dirname(npmCli)), join(nodeTree, 'usr/local/lib/node_modules/npm'), {
    recursive: true,
    verbatimSymlinks: true,
  })
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(nodeTree, 'usr/local/bin/npm'))
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(nodeTree, 'usr/local/bin/npx'))
  cpSync('/etc/ssl/certs/ca-certificates.crt', join(nodeTree, 'etc/ssl/certs/ca-certificates.crt'))
  mkdirSync(join(nodeTree, 'usr/local/etc'), { recursive: true })
  writeFileSync(join(nodeTree, 'usr/local/etc/npmrc'), 'cafile=/etc/ssl/certs/ca-certificates.crt\n')
  run('chroot', [
    nodeTree,
    'sh',
    '-c',
    'groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home --shell /bin/bash node',
  ])
  importTree(builder, nodeTree, nodeName, [`ENV NODE_VERSION=${nodeVersion}`, 'CMD ["node"]'])
  rmSync(nodeTree, { recursive: true, force: true })

  // NATS: Debian + Debian's nats-server.
  const natsVersion = /v(\d+\.\d+\.\d+)/.exec(run('nats-server', ['--version']))?.[1] ?? 'unknown'
  const natsName = `nats:${natsVersion}-debian`
  const natsTree = join(swarmDir, 'tree-nats')
  rmSync(natsTree, { recursive: true, force: true })
  copyTree(rootfs, natsTree)
  cpSync(run('sh', ['-c', 'command -v nats-server']).trim(), join(natsTree, 'usr/local/bin/nats-server'))
  importTree(builder, natsTree, natsName, ['ENTRYPOINT ["nats-server"]', 'EXPOSE 4222 6222 8222'])
  rmSync(natsTree, { recursive: true, force: true })
  return { node: nodeName, nats: natsName }
}

/** The monitoring images stack.yml names, as this machine builds them (passed to the deploy as *_IMAGE). */
export interface MonitoringImages {
  prometheus: string
  alertmanager: string
  nodeExporter: string
}

/**
 * A Debian package's file: the one apt fetched when it installed the package here (its archive cache),
 * else `apt-get download` of the installed version into .local/cache/debs.
 */
function debianPackage(name: string): { file: string; version: string } {
  const [version = '', arch = ''] = run('dpkg-query', ['-W', '-f=${Version} ${Architecture}', name])
    .trim()
    .split(' ')
  const fileName = `${name}_${version.replace(/^\d+:/, '')}_${arch}.deb`
  const cached = join('/var/cache/apt/archives', fileName)
  if (existsSync(cached)) return { file: cached, version }
  const dir = join(projectRoot, '.local', 'cache', 'debs')
  mkdirSync(dir, { recursive: true })
  if (!existsSync(join(dir, fileName))) run('apt-get', ['download', `${name}=${version}`], { cwd: dir })
  return { file: join(dir, fileName), version }
}

/**
 * The official prom/* images on Debian: the package's files unpacked into the base system (`dpkg -x`: no
 * maintainer scripts, which would set up a system service and a user the image never uses), the
 * official image's binary path (/bin/<name>), user (nobody, 65534), entrypoint, default command, ports,
 * and data directory owned by nobody (a new volume takes its owner from the image). Debian's wget
 * stands in for busybox's in the health checks. Named as stack.yml's images, tagged with Debian's
 * version: stack.yml pins the official releases, this machine deploys these through *_IMAGE.
 */
export function makeMonitoringImages(swarmDir: string, builder: Builder): MonitoringImages {
  const rootfs = debianRootfs()
  const specs = [
    {
      key: 'prometheus',
      pkg: 'prometheus',
      repo: 'prom/prometheus',
      binary: ['prometheus', 'prometheus'],
      data: '/prometheus',
      cmd: ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'],
      port: 9090,
    },
    {
      key: 'alertmanager',
      pkg: 'prometheus-alertmanager',
      repo: 'prom/alertmanager',
      binary: ['prometheus-alertmanager', 'alertmanager'],
      data: '/alertmanager',
      cmd: ['--config.file=/etc/alertmanager/alertmanager.yml', '--storage.path=/alertmanager'],
      port: 9093,
    },
    {
      key: 'nodeExporter',
      pkg: 'prometheus-node-exporter',
      repo: 'prom/node-exporter',
      binary: ['prometheus-node-exporter', 'node_exporter'],
      data: undefined,
      cmd: [],
      port: 9100,
    },
  ] as const
  // One Debian layer under all three: pushed once, pulled once per node.
  const base = 'vtta/debian-base:bookworm'
  if (!dockerSucceeds(builder.dockerHost, ['image', 'inspect', base])) importTree(builder, rootfs, base, [])
  const images: Record<string, string> = {}
  for (const spec of specs) {
    const { file, version } = debianPackage(spec.pkg)
    const context = join(swarmDir, `context-${spec.key}`)
    rmSync(context, { recursive: true, force: true })
    mkdirSync(join(context, 'package'), { recursive: true })
    run('dpkg', ['-x', file, join(context, 'package')])
    const [debianName, officialName] = spec.binary
    // bookworm's /bin is /usr/bin: the official path /bin/<name> is the package's binary under that name.
    // Only the package's /usr and /etc: its /lib (systemd units) would replace the merged-/usr symlink.
    writeFileSync(
      join(context, 'Dockerfile'),
      [
        `FROM ${base}`,
        'COPY package/usr/ /usr/',
        'COPY package/etc/ /etc/',
        ...(debianName !== officialName ? [`RUN ln -s ${debianName} /usr/bin/${officialName}`] : []),
        ...(spec.data ? [`RUN mkdir -p ${spec.data} && chown 65534:65534 ${spec.data}`] : []),
        `ENTRYPOINT ["/bin/${officialName}"]`,
        `CMD ${JSON.stringify(spec.cmd)}`,
        'USER 65534:65534',
        ...(spec.data ? [`WORKDIR ${spec.data}`] : []),
        `EXPOSE ${spec.port}`,
        '',
      ].join('\n')
    )
    const name = `${spec.repo}:v${/^(\d+\.\d+\.\d+)/.exec(version)?.[1] ?? version}-debian`
    build(builder, ['--network', 'host', '-t', name, context])
    rmSync(context, { recursive: true, force: true })
    images[spec.key] = name
  }
  return {
    prometheus: images.prometheus!,
    alertmanager: images.alertmanager!,
    nodeExporter: images.nodeExporter!,
  }
}

/**
 * `docker build <args>` on the builder engine, through BuildKit. Debian's engine has BuildKit built in but
 * no buildx; a CLI with buildx builds through it. The builder has no bridge: `--network host` gives a RUN
 * step this machine's network.
 */
function build(builder: Builder, args: string[]): void {
  const [command, ...buildArgs] = attempt('docker', ['buildx', 'version'])
    ? ['docker', 'buildx', 'build', '--load']
    : [existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker', 'build']
  run(command, [...buildArgs, ...args], {
    env: { ...process.env, DOCKER_HOST: builder.dockerHost, DOCKER_BUILDKIT: '1' },
  })
}

export interface Built {
  image: string
  seconds: number
  sizeBytes: number
}

/** Builds the real Dockerfile. */
export function buildBackend(builder: Builder, version: string): Built {
  const started = Date.now()
  build(builder, ['--network', 'host', '-t', backendImage(version).production, projectRoot])
  const seconds = (Date.now() - started) / 1000
  const sizeBytes = Number(
    docker(builder.dockerHost, [
      'image',
      'inspect',
      '--format',
      '{{.Size}}',
      backendImage(version).production,
    ]).trim()
  )
  return { image: backendImage(version).production, seconds, sizeBytes }
}

/**
 * A version that starts but is never ready: the rollback drill's broken release. Same image, but the
 * process only idles, so the health check (stack.yml) fails and the update must roll back.
 */
export function buildBrokenBackend(builder: Builder, from: string, version: string): string {
  const dir = join(builder.dir, 'broken')
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    join(dir, 'Dockerfile'),
    `FROM ${from}\nENTRYPOINT ["node", "-e", "setInterval(() => {}, 60000)"]\n`
  )
  build(builder, ['-t', backendImage(version).production, dir])
  return backendImage(version).production
}

/** The tunnel connector's stand-in (tunnel-stand-in.ts, run by stack.local.yml): the Node base and one file. */
export function buildTunnelStandIn(builder: Builder): string {
  const dir = join(builder.dir, 'tunnel-stand-in')
  mkdirSync(dir, { recursive: true })
  cpSync(join(projectRoot, 'local', 'docker-swarm', 'tunnel-stand-in.ts'), join(dir, 'tunnel-stand-in.ts'))
  writeFileSync(
    join(dir, 'Dockerfile'),
    [
      `FROM ${dockerfileBase()}`,
      'COPY tunnel-stand-in.ts /tunnel-stand-in.ts',
      // stack.yml's health check runs `cloudflared tunnel --metrics 127.0.0.1:2000 ready`.
      'RUN printf \'#!/bin/sh\\nexec node /tunnel-stand-in.ts "$@"\\n\' > /usr/local/bin/cloudflared && chmod 755 /usr/local/bin/cloudflared',
      'USER node',
      'ENTRYPOINT ["node", "/tunnel-stand-in.ts"]',
      '',
    ].join('\n')
  )
  const image = 'vtta/tunnel-stand-in:1.0.0'
  build(builder, ['--network', 'host', '-t', image, dir])
  return image
}

/** Tags an image for the local registry and pushes it; returns the name the nodes pull. */
export function push(builder: Builder, image: string): string {
  const local = `${registryHost}/${image.replace(/^ghcr\.io\//, '')}`
  docker(builder.dockerHost, ['tag', image, local])
  docker(builder.dockerHost, ['push', local])
  return local
}

/** Starts the builder engine (this machine's network) and the registry (on the bridge), detached. */
export function startBuilderAndRegistry(swarmDir: string, builder: Builder): void {
  mkdirSync(builder.dir, { recursive: true })
  if (!dockerSucceeds(builder.dockerHost, ['info'])) {
    const log = openSync(join(builder.dir, 'dockerd.log'), 'a')
    spawn('dockerd', dockerdArgs(builder), { detached: true, stdio: ['ignore', log, log] }).unref()
  }
  const registryDir = join(swarmDir, 'registry')
  mkdirSync(join(registryDir, 'data'), { recursive: true })
  const answering = attempt('curl', ['-fsS', '-m', '2', `http://${registryHost}/v2/`])
  if (answering && !existsSync(join(registryDir, 'registry.pid')))
    throw new Error(
      `something already answers on ${registryHost} (left by an interrupted run? npm run swarm:down)`
    )
  if (!answering) {
    const config = join(registryDir, 'config.yml')
    writeFileSync(
      config,
      [
        'version: 0.1',
        'log: {level: warn}',
        `storage: {filesystem: {rootdirectory: ${join(registryDir, 'data')}}, delete: {enabled: true}}`,
        `http: {addr: '${bridge.address}:5000'}`,
        '',
      ].join('\n')
    )
    const log = openSync(join(registryDir, 'registry.log'), 'a')
    const child = spawn('docker-registry', ['serve', config], { detached: true, stdio: ['ignore', log, log] })
    writeFileSync(join(registryDir, 'registry.pid'), String(child.pid))
    child.unref()
  }
}
