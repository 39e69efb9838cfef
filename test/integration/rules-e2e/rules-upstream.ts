/**
 * The upstream MCP server of the rules end-to-end tests, run over stdio as a managed
 * server (`node --import tsx rules-upstream.ts`). Its tools return what the rules act on:
 *
 * - `echo {text}`: returns `text` (request-leg rules show in what comes back) and records
 *   the last text it received, which `last_received` returns, so a test can see what
 *   reached the upstream;
 * - `profile`: a customer record with PII in text content and `structuredContent`;
 * - `fetch_page {url}`: a web page with an indirect (second-order) prompt injection;
 * - `big {kib}`: `kib` KiB of text with an email address every 4 KiB;
 * - `binary`: an image, an audio clip and an embedded binary resource, plus a text block;
 * - `ask_person {question}`: asks the client (elicitation, fields `email` and `note`) and
 *   returns the answer it got as JSON, or the error as an error result;
 * - `ask_person_url {url}`: asks the client to have the person open `url` (URL-mode
 *   elicitation), tells it the elicitation completed when it was accepted, and returns the
 *   answer or the error likewise;
 * - `needs_sign_in {url}`: fails with -32042 (URL elicitation required), asking for `url`;
 * - `ask_model {prompt, system?}`: asks the client's model (sampling) and returns the
 *   answer it got as JSON, or the error as an error result;
 * - prompt `summarize {topic}`; prompt `refuse {why}`, which fails with the JSON-RPC error
 *   -32003 whose message is `why` and whose data repeats it; resource `doc://customers` (PII) and `doc://logo` (blob);
 * - completions of `summarize`'s `topic` and of template `doc://customer/{id}`'s `id`: the
 *   first value is the value received (so a test sees what reached the upstream), then the
 *   context arguments received, as JSON, when there are any, then a suggestion with an
 *   email address in it.
 */
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CreateMessageResultSchema, ElicitResultSchema, UrlElicitationRequiredError } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod';
import { CUSTOMER_TEXT, PAGE_WITH_INJECTION } from './upstream-content.js';


const server = new McpServer({ name: 'gatehouse-rules-fixture', version: '1.0.0' });
let lastReceived: unknown = null;

server.registerTool('echo', { description: 'Returns its text', inputSchema: { text: z.string() } }, async ({ text }) => {
  lastReceived = text;
  return { content: [{ type: 'text', text }] };
});

server.registerTool('echo_json', { description: 'Returns its arguments as JSON text', inputSchema: { value: z.unknown() } }, async (args) => {
  lastReceived = args;
  return { content: [{ type: 'text', text: JSON.stringify(args) }] };
});

server.registerTool('last_received', { description: 'What echo last received' }, async () => ({
  content: [{ type: 'text', text: JSON.stringify(lastReceived) }],
}));

server.registerTool('profile', { description: 'A customer record' }, async () => ({
  content: [{ type: 'text', text: CUSTOMER_TEXT }],
  structuredContent: { name: 'Ada Lovelace', email: 'ada@example.com', orders: [{ id: 7, note: 'ship to ada@example.com' }] },
}));

server.registerTool('fetch_page', { description: 'Fetches a web page', inputSchema: { url: z.string() } }, async () => ({
  content: [{ type: 'text', text: PAGE_WITH_INJECTION }],
}));

server.registerTool('big', { description: 'Large text', inputSchema: { kib: z.number() } }, async ({ kib }) => {
  const chunk = `${'lorem ipsum dolor sit amet '.repeat(150).slice(0, 4096 - 40)} mail: bulk@example.com \n`;
  return { content: [{ type: 'text', text: chunk.repeat(Math.ceil((kib * 1024) / chunk.length)) }] };
});

server.registerTool('ask_person', { description: 'Asks the person', inputSchema: { question: z.string() } }, async ({ question }, extra) => {
  try {
    const answer = await extra.sendRequest(
      { method: 'elicitation/create', params: { message: question, requestedSchema: { type: 'object', properties: { email: { type: 'string' }, note: { type: 'string' } } } } },
      ElicitResultSchema,
    );
    return { content: [{ type: 'text', text: JSON.stringify(answer) }] };
  } catch (error) {
    return { content: [{ type: 'text', text: `elicitation failed: ${(error as Error).message}` }], isError: true };
  }
});

server.registerTool('ask_person_url', { description: 'Asks the person to open a URL', inputSchema: { url: z.string() } }, async ({ url }, extra) => {
  try {
    const elicitationId = `el-${Date.now()}`;
    const answer = await extra.sendRequest({ method: 'elicitation/create', params: { mode: 'url', message: 'Please sign in to continue', url, elicitationId } }, ElicitResultSchema);
    // The person finished at the URL: the client learns it (as a server would once its page saw them through).
    if (answer.action === 'accept') await extra.sendNotification({ method: 'notifications/elicitation/complete', params: { elicitationId } });
    return { content: [{ type: 'text', text: JSON.stringify(answer) }] };
  } catch (error) {
    return { content: [{ type: 'text', text: `elicitation failed: ${(error as Error).message}` }], isError: true };
  }
});

server.registerTool('needs_sign_in', { description: 'Fails until the person signed in at a URL', inputSchema: { url: z.string() } }, async ({ url }) => {
  throw new UrlElicitationRequiredError([{ mode: 'url', elicitationId: 'el-sign-in', url, message: 'Sign in to continue' }], 'Sign-in required');
});

server.registerTool('ask_model', { description: "Asks the client's model", inputSchema: { prompt: z.string(), system: z.string().optional() } }, async ({ prompt, system }, extra) => {
  try {
    const params = { messages: [{ role: 'user' as const, content: { type: 'text' as const, text: prompt } }], maxTokens: 100, ...(system === undefined ? {} : { systemPrompt: system }) };
    const answer = await extra.sendRequest({ method: 'sampling/createMessage', params }, CreateMessageResultSchema);
    return { content: [{ type: 'text', text: JSON.stringify(answer) }] };
  } catch (error) {
    return { content: [{ type: 'text', text: `sampling failed: ${(error as Error).message}` }], isError: true };
  }
});

server.registerTool('binary', { description: 'Binary content' }, async () => ({
  content: [
    { type: 'image', data: Buffer.from('ada@example.com in pixels').toString('base64'), mimeType: 'image/png' },
    { type: 'audio', data: Buffer.from([0, 1, 2, 255]).toString('base64'), mimeType: 'audio/wav' },
    { type: 'resource', resource: { uri: 'file:///blob.bin', blob: Buffer.from('ada@example.com').toString('base64'), mimeType: 'application/octet-stream' } },
    { type: 'text', text: 'caption: photo of ada@example.com\u0000\u0001\ud800 end' },
  ],
}));

/** What a completion answers: the value it received, the context it received, and a suggestion carrying PII. */
const suggestions = (value: string, context?: { arguments?: Record<string, string> }): string[] => [
  value,
  ...(context?.arguments && Object.keys(context.arguments).length > 0 ? [JSON.stringify(context.arguments)] : []),
  `${value} accounts of ada@example.com`,
];

server.registerPrompt('summarize', { description: 'Summarize a topic', argsSchema: { topic: completable(z.string(), suggestions) } }, async ({ topic }) => ({
  messages: [{ role: 'user', content: { type: 'text', text: `Summarize ${topic}. Send questions to ada@example.com.` } }],
}));

server.registerPrompt('refuse', { description: 'Fails with a JSON-RPC error saying why', argsSchema: { why: z.string() } }, async ({ why }) => {
  // Not McpError, whose message carries an "MCP error <code>: " prefix: the error as a server states it.
  throw Object.assign(new Error(why), { code: -32003, data: { detail: why, code: 'REFUSED' } });
});

server.registerResource('customers', 'doc://customers', { mimeType: 'text/plain' }, async (uri) => ({
  contents: [{ uri: uri.href, mimeType: 'text/plain', text: CUSTOMER_TEXT }],
}));

server.registerResource('logo', 'doc://logo', { mimeType: 'image/png' }, async (uri) => ({
  contents: [{ uri: uri.href, mimeType: 'image/png', blob: Buffer.from('ada@example.com').toString('base64') }],
}));

server.registerResource(
  'customer',
  new ResourceTemplate('doc://customer/{id}', { list: undefined, complete: { id: suggestions } }),
  { mimeType: 'text/plain' },
  async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: CUSTOMER_TEXT }] }),
);

process.stdin.once('end', () => {
  void server.close().finally(() => process.exit(0));
});
await server.connect(new StdioServerTransport());
