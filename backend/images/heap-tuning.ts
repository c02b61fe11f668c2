/**
 * Every transform holds a multi-megabyte source in Buffers (the body, and the socket's 64 KB reads
 * before it), memory outside the JS heap. Under V8's default rule for such memory the service ran a
 * full mark-compact every two or three images under load (--trace-gc): about 5 ms of CPU per image,
 * a twentieth of a transform, mostly in GC threads. Counting that memory in the heap's global limit
 * instead lets it be collected with the rest, at the price of about 60 MB more resident memory at
 * peak (`npm run bench` measures both). It must be set before the first large Buffer, so this
 * module comes first in service.ts.
 */
import { setFlagsFromString } from 'node:v8'

setFlagsFromString('--external-memory-accounted-in-global-limit')
