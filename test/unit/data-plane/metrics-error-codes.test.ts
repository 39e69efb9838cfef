import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noteMcpMethod, processMetrics } from '../../../data-plane/ops/metrics.js';

// A real HTTP server whose answers go through the metrics' observer, as the endpoint's do.
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const code = new URL(req.url!, 'http://x').searchParams.get('code')!;
    processMetrics().observe(req, res, 'codes-gw', () => true);
    noteMcpMethod(res, 'tools/call');
    res.writeHead(200, { 'content-type': 'application/json' }).end(`{"jsonrpc":"2.0","id":1,"error":{"code":${code},"message":"upstream says no"}}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const errorSeries = async () =>
  (await processMetrics().registry.getSingleMetricAsString('gatehouse_data_plane_errors_total'))
    .split('\n')
    .filter((line) => line.includes('gateway="codes-gw"'));

describe('the error-code label of /metrics', () => {
  it('keeps JSON-RPC reserved codes and folds an upstream\'s own codes into "other"', async () => {
    for (const code of [-32602, -32601, -32060, 1, 42, 7001, -1, 123456789, -40000]) await (await fetch(`${url}/?code=${code}`)).text();
    for (let i = 0; i < 200; i++) await (await fetch(`${url}/?code=${100_000 + i}`)).text();
    const series = await errorSeries();
    const codes = series.map((line) => /code="([^"]+)"/.exec(line)![1]).sort();
    expect(codes).toEqual(['-32060', '-32601', '-32602', 'other']);
    expect(series.find((line) => line.includes('code="other"'))).toMatch(/ 206$/);
  });
});
