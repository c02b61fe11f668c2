/**
 * Which of a datacenter's BRIDGE_SHARDS bridges a request goes through (nats/bridge-stub.ts): a
 * stable hash of the request's shard key, modulo the shard count. The same key always lands in the
 * same shard, in every isolate and in Node (the bridge benchmark routes by it), so identical image
 * misses still meet in one object and collapse there; different keys spread over all shards.
 *
 * FNV-1a, 32 bits, over the key's UTF-8 bytes: a few lines, no dependency, well spread in its low
 * bits for short strings such as URLs and message ids. Not a defence against chosen keys: a client
 * that aims every request at one shard gets the throughput of one object, which is today's.
 */

const FNV_OFFSET_BASIS = 0x811c9dc5
const FNV_PRIME = 0x01000193
const utf8 = new TextEncoder()

/** The shard of `key` among `shards` (an integer >= 1): 0 .. shards - 1. */
export function shardOf(key: string, shards: number): number {
  if (!Number.isInteger(shards) || shards < 1)
    throw new RangeError(`shards must be an integer >= 1, not ${shards}`)
  if (shards === 1) return 0
  let hash = FNV_OFFSET_BASIS
  for (const byte of utf8.encode(key)) hash = Math.imul(hash ^ byte, FNV_PRIME)
  return (hash >>> 0) % shards
}
