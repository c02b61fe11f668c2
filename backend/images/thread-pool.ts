/**
 * sharp runs every transform on libuv's thread pool (4 threads unless told otherwise), which
 * dns.lookup and async fs share. With as many transform slots as cores on a big machine, transforms
 * would queue inside libuv and DNS lookups behind them; so the pool gets the cores plus two. libuv
 * reads the variable when the pool first starts, so this module is the service's first import.
 */
import { availableParallelism } from 'node:os'

process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism() + 2))
