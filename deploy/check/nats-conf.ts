/**
 * deploy/nats.conf, the one nats-server configuration of every datacenter: every listener authenticates
 * (accounts and users from auth.conf, routes and gateways with their passwords, monitoring on 127.0.0.1
 * only), the edge's WebSocket listener has TLS, JetStream keeps one replica per datacenter, and each
 * server takes its place in the super-cluster from auth.conf (its region's cluster, gateways to every
 * region, tags, JetStream or not). Also the small reader the stack's checks use to compare stack.yml
 * with it (lame duck, store_dir, the WebSocket certificate).
 */
import { deployFiles } from './files.ts'

/** A top-level setting of nats.conf (`key: value`, `key = value` or `key value`), quotes removed. */
export function natsSetting(conf: string, key: string): string | undefined {
  const match = new RegExp(`^\\s*${key}\\s*[:=]?\\s*"?([^"\\s#]+)"?`, 'm').exec(conf)
  return match?.[1]
}

/** The body of a `name { ... }` block of nats.conf (braces balanced, comments ignored); undefined if absent. */
export function natsBlock(conf: string, name: string): string | undefined {
  const text = conf.replace(/#.*$/gm, '')
  const start = new RegExp(`^\\s*${name}\\s*[:=]?\\s*\\{`, 'm').exec(text)
  if (!start) return undefined
  let depth = 1
  for (let i = start.index + start[0].length; i < text.length; i++) {
    if (text[i] === '{') depth++
    else if (text[i] === '}' && --depth === 0) return text.slice(start.index + start[0].length, i)
  }
  return undefined
}

/** Problems of nats.conf, each "deploy/nats.conf: <detail>". */
export function natsConfProblems(conf: string): string[] {
  const problems: string[] = []
  const fail = (detail: string) => problems.push(`${deployFiles.natsConf}: ${detail}`)

  // Every listener authenticates: accounts and users come from auth.conf, routes present the route
  // password, and the unauthenticated monitoring port listens inside the container only.
  if (!/^\s*include\s+"?auth\.conf"?\s*$/m.test(conf.replace(/#.*$/gm, '')))
    fail('must include auth.conf (accounts, users, route credentials)')
  const cluster = natsBlock(conf, 'cluster') ?? ''
  if (
    !/^\s*routes\s*[:=]?\s*\$ROUTES\s*$/m.test(cluster) ||
    natsBlock(cluster, 'authorization') === undefined
  )
    fail('cluster routes must authenticate (authorization, routes: $ROUTES from auth.conf)')
  // One cluster per region (regions.md §1): its name and routes come from the catalogue through auth.conf.
  if (natsSetting(cluster, 'name') !== '$CLUSTER_NAME')
    fail("the cluster's name must be $CLUSTER_NAME (its region, from auth.conf): one cluster per region")
  const gateway = natsBlock(conf, 'gateway')
  if (gateway === undefined)
    fail('no gateway block: the regions must be joined by gateways (gateways: $GATEWAYS from auth.conf)')
  else {
    if (natsSetting(gateway, 'name') !== '$CLUSTER_NAME')
      fail("the gateway's name must be $CLUSTER_NAME, its cluster's name")
    if (!/:7222$/.test(natsSetting(gateway, 'listen') ?? '')) fail('the gateway must listen on port 7222')
    if (
      !/^\s*gateways\s*[:=]?\s*\$GATEWAYS\s*$/m.test(gateway) ||
      natsBlock(gateway, 'authorization') === undefined
    )
      fail('gateways must authenticate (authorization, gateways: $GATEWAYS from auth.conf)')
  }
  if (!/^127\.0\.0\.1:/.test(natsSetting(conf, 'http') ?? ''))
    fail('the monitoring port (http) must listen on 127.0.0.1: it has no authentication')
  if (/no_auth_user/.test(conf.replace(/#.*$/gm, '')))
    fail('no_auth_user lets clients in without credentials')
  if (!/^\s*unique_tag\s*[:=]?\s*"dc:"/m.test(conf)) fail('jetstream needs unique_tag: "dc:"')
  if (!natsSetting(natsBlock(conf, 'jetstream') ?? '', 'store_dir'))
    fail('jetstream needs a store_dir (on the persistent volume)')
  // The catalogue decides which servers vote in the meta group (the home region's majority).
  if (natsSetting(natsBlock(conf, 'jetstream') ?? '', 'enabled') !== '$JETSTREAM')
    fail('jetstream must say enabled: $JETSTREAM (from auth.conf: the catalogue says which servers run it)')
  // The edge's WebSocket listener crosses the internet: TLS, never no_tls.
  const websocket = natsBlock(conf, 'websocket')
  if (websocket === undefined) fail('no websocket listener (the edge connects over wss://)')
  else {
    if (!natsSetting(websocket, 'listen') && !natsSetting(websocket, 'port'))
      fail('the websocket listener needs listen (or port)')
    const tls = natsBlock(websocket, 'tls')
    if (tls === undefined || /^\s*no_tls\s*[:=]?\s*true/m.test(websocket))
      fail('the websocket listener needs tls { cert_file, key_file }')
    else {
      for (const key of ['cert_file', 'key_file']) {
        if (!/^\/run\/secrets\/./.test(natsSetting(tls, key) ?? ''))
          fail(`websocket tls ${key} must be a Docker secret (/run/secrets/...)`)
      }
    }
  }
  if (!/^\s*server_tags\s*[:=]?\s*\[\s*\$DC_TAG\s*,\s*\$REGION_TAG\s*\]/m.test(conf))
    fail('server_tags must be [$DC_TAG, $REGION_TAG] (placement by datacenter and by region)')
  for (const key of ['ping_interval', 'ping_max', 'lame_duck_duration']) {
    if (natsSetting(conf, key) === undefined) fail(`${key} is not set`)
  }
  return problems
}
