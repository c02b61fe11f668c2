/**
 * Every transform holds a multi-megabyte source in Buffers (the body, and the socket's 64 KB reads
 * before it), memory outside the JS heap. V8's default rule for such memory starts a full
 * mark-compact after a few megabytes of it, so under load the service ran one every two or three
 * images: about 5 ms of CPU per image, a twentieth of a transform, in GC threads. Counting that
 * memory in the heap's global limit instead lets it be collected with the rest, at the price of
 * about 60 MB more resident memory at peak (`npm run bench` measures both). It must be set before
 * the first large Buffer, so this module comes first in service.ts.
 */
import { setFlagsFromString } from 'node:v8'

setFlagsFromString('--external-memory-accounted-in-global-limit')
