// A long-lived bridge between the Python tests and @hellocoop/httpsig 2.x.
// One JSON request per stdin line, one JSON answer per stdout line:
//   {"id": 1, "op": "sign", "url", "method", "headers", "body", "signingKey", "signatureKey", "components"?}
//     -> {"id": 1, "headers": {...}}            (fetch() with dryRun: the headers it would send)
//   {"id": 2, "op": "verify", "method", "authority", "path", "query"?, "headers", "body"?, "requireContentDigest"?}
//     -> {"id": 2, "result": {...}}             (verify(): verified, error, signatureError, ...)
// Nothing here is a stub: these are the package's own signer and verifier.
import { createInterface } from 'node:readline'
import { fetch as signedFetch, verify } from '@hellocoop/httpsig'

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity })

async function handle(msg) {
    if (msg.op === 'sign') {
        const { headers } = await signedFetch(msg.url, {
            method: msg.method,
            headers: msg.headers ?? {},
            body: msg.body ?? undefined,
            signingKey: msg.signingKey,
            signatureKey: msg.signatureKey,
            components: msg.components ?? undefined,
            dryRun: true,
        })
        return { headers: Object.fromEntries(headers.entries()) }
    }
    if (msg.op === 'verify') {
        const result = await verify(
            {
                method: msg.method,
                authority: msg.authority,
                path: msg.path,
                query: msg.query ?? undefined,
                headers: msg.headers,
                body: msg.body ?? undefined,
            },
            { requireContentDigest: msg.requireContentDigest ?? false },
        )
        return { result }
    }
    throw new Error(`unknown op ${msg.op}`)
}

rl.on('line', async (line) => {
    let msg
    try {
        msg = JSON.parse(line)
    } catch (err) {
        process.stdout.write(JSON.stringify({ id: null, error: String(err) }) + '\n')
        return
    }
    try {
        const answer = await handle(msg)
        process.stdout.write(JSON.stringify({ id: msg.id, ...answer }) + '\n')
    } catch (err) {
        process.stdout.write(JSON.stringify({ id: msg.id, error: String(err?.message ?? err) }) + '\n')
    }
})
