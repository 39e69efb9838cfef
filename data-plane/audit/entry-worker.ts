// The audit entry builder's worker thread (see entry-builder.ts): facts of finished calls
// in, the JSON of their audit entries out. It loads only what building needs (the
// scrubber, the token counter's vocabulary, the entry builder), never the snapshot or
// the MCP stack.
import { parentPort, workerData } from 'node:worker_threads';
import { createScrubber } from '../../schema/audit/scrub.js';
import { buildEntryTexts } from './build-entries.js';
import type { CallFacts } from './call-facts.js';
import type { BuildReply, BuildRequest, EntryWorkerData } from './entry-builder.js';
import { TokenEstimator } from './token-estimator.js';

const settings = workerData as EntryWorkerData;
const deps = {
  scrubber: createScrubber(settings.scrubKeys ? { keys: settings.scrubKeys } : { extraKeys: ['mcp-session-id'] }),
  tokens: new TokenEstimator(),
};
const tokensReady = deps.tokens.ready();

parentPort!.on('message', (request: BuildRequest) => {
  void tokensReady.then((tokensLoaded) => {
    const texts: string[][] = [];
    const failed: { index: number; message: string }[] = [];
    request.facts.forEach((facts: CallFacts, index) => {
      const serialized: string[] = [];
      try {
        buildEntryTexts(facts, deps, serialized);
        texts.push(serialized);
      } catch (error) {
        texts.push([]);
        failed.push({ index, message: error instanceof Error ? error.message : String(error) });
      }
    });
    const reply: BuildReply = { id: request.id, texts, failed, tokensLoaded };
    parentPort!.postMessage(reply);
  });
});
