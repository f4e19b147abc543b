// The same server through the official llama-stack-client npm package: models,
// chat completions, inspect, providers and routes.
// Environment: LLAMA_STACK_BASE_URL, MODEL_ID, BEDROCK_TEST_KEY (see README.md).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import LlamaStackClient from 'llama-stack-client';

import {
  BASE_URL,
  EXPECTED_MODEL_ID as MODEL_ID,
  EXPECTED_PROVIDER_RESOURCE_ID,
  TEST_TIMEOUT_MS,
  REQUEST_TIMEOUT_MS,
  assertCompletion,
  assertStream,
  collectStream,
  describeError,
  expectRejection,
  show,
} from './common.mjs';

// maxRetries: 0 so that the error cases fail fast instead of being retried.
const client = new LlamaStackClient({ baseURL: BASE_URL, maxRetries: 0, timeout: REQUEST_TIMEOUT_MS });

const opts = { timeout: TEST_TIMEOUT_MS };

test('models.list() contains MODEL_ID from the bedrock provider', opts, async () => {
  const models = await client.models.list();
  assert.ok(Array.isArray(models), `models.list(): expected an array, got ${show(models)}`);
  const m = models.find((x) => x.id === MODEL_ID);
  assert.ok(m, `models.list(): expected an entry with id ${show(MODEL_ID)}, got ${show(models)}`);
  assert.equal(m.custom_metadata?.provider_id, 'bedrock', `models.list(): expected custom_metadata.provider_id "bedrock", got ${show(m)}`);
});

test('models.retrieve(MODEL_ID) with "/" and ":" left raw in the path', opts, async () => {
  // The client puts the id into the path as is: GET /v1/models/bedrock/openai.gpt-oss-20b-1:0
  const m = await client.models.retrieve(MODEL_ID);
  assert.equal(m.identifier, MODEL_ID, `models.retrieve: expected identifier ${show(MODEL_ID)}, got ${show(m)}`);
  assert.equal(m.provider_id, 'bedrock', `models.retrieve: expected provider_id "bedrock", got ${show(m)}`);
  assert.equal(m.provider_resource_id, EXPECTED_PROVIDER_RESOURCE_ID, `models.retrieve: expected provider_resource_id ${show(EXPECTED_PROVIDER_RESOURCE_ID)}, got ${show(m)}`);
  assert.equal(m.model_type, 'llm', `models.retrieve: expected model_type "llm", got ${show(m)}`);
  assert.equal(m.type, 'model', `models.retrieve: expected type "model", got ${show(m)}`);
});

test('chat.completions.create, non-streaming', opts, async () => {
  const response = await client.chat.completions.create({
    model: MODEL_ID,
    messages: [{ role: 'user', content: 'Which planet do humans live on?' }],
    stream: false,
  });
  assertCompletion(response, {
    what: 'llama-stack-client chat (non-stream)',
    modelId: MODEL_ID,
    prompt: 'Which planet do humans live on?',
    contains: 'Earth',
  });
});

test('chat.completions.create, streaming', opts, async () => {
  const stream = await client.chat.completions.create({
    model: MODEL_ID,
    messages: [{ role: 'user', content: "What's the name of the Sun in Latin?" }],
    stream: true,
  });
  const collected = await collectStream(stream);
  assertStream(collected, {
    what: 'llama-stack-client chat (stream)',
    modelId: MODEL_ID,
    prompt: "What's the name of the Sun in Latin?",
    contains: 'Sol',
    includeUsage: false,
  });
});

test('chat.completions.create, streaming with stream_options.include_usage', opts, async () => {
  const stream = await client.chat.completions.create({
    model: MODEL_ID,
    messages: [{ role: 'user', content: "What's the name of the Sun in Latin?" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const collected = await collectStream(stream);
  assertStream(collected, {
    what: 'llama-stack-client chat (stream, include_usage)',
    modelId: MODEL_ID,
    prompt: "What's the name of the Sun in Latin?",
    contains: 'Sol',
    includeUsage: true,
  });
});

test('inspect.health() reports OK', opts, async () => {
  const health = await client.inspect.health();
  assert.equal(health?.status, 'OK', `inspect.health(): expected status "OK", got ${show(health)}`);
});

test('inspect.version() reports a version', opts, async () => {
  const info = await client.inspect.version();
  assert.ok(
    typeof info?.version === 'string' && info.version.trim().length > 0,
    `inspect.version(): expected a non-empty version string, got ${show(info)}`,
  );
});

test('providers.list() shows the bedrock inference provider with secrets redacted', opts, async () => {
  const providers = await client.providers.list();
  assert.ok(Array.isArray(providers), `providers.list(): expected an array, got ${show(providers)}`);
  const p = providers.find((x) => x.api === 'inference' && x.provider_id === 'bedrock');
  assert.ok(p, `providers.list(): expected an entry {api: "inference", provider_id: "bedrock"}, got ${show(providers)}`);
  assert.equal(p.provider_type, 'remote::bedrock', `providers.list(): expected provider_type "remote::bedrock", got ${show(p)}`);
  assert.ok(p.config && typeof p.config === 'object', `providers.list(): expected a config object on the bedrock provider, got ${show(p)}`);

  const key = process.env.BEDROCK_TEST_KEY;
  assert.ok(key, 'providers.list(): BEDROCK_TEST_KEY is not set; the harness must set it to the Bedrock key the server was started with');
  // Look at the whole answer, not only config: the key must appear nowhere.
  const everything = JSON.stringify(providers);
  assert.ok(
    !everything.includes(key),
    `providers.list(): expected the Bedrock key (BEDROCK_TEST_KEY, ${key.length} chars) to be redacted, but it appears in ${show(p.config)}`,
  );
});

test('routes.list() includes POST /v1/chat/completions', opts, async () => {
  const routes = await client.routes.list();
  assert.ok(Array.isArray(routes), `routes.list(): expected an array, got ${show(routes)}`);
  const r = routes.find((x) => x.route === '/v1/chat/completions' && x.method === 'POST');
  assert.ok(r, `routes.list(): expected a route {route: "/v1/chat/completions", method: "POST"}, got ${show(routes)}`);
});

test('unknown model -> NotFoundError (404)', opts, async (t) => {
  await t.test('chat.completions.create', async () => {
    const err = await expectRejection(
      client.chat.completions.create({
        model: 'invalid-model-id',
        messages: [{ role: 'user', content: 'Hello!' }],
        stream: false,
      }),
      'chat with model "invalid-model-id"',
    );
    assert.ok(err instanceof LlamaStackClient.NotFoundError, `chat with an unknown model: expected LlamaStackClient.NotFoundError, got ${describeError(err)}`);
    assert.equal(err.status, 404, `chat with an unknown model: expected HTTP 404, got ${describeError(err)}`);
    // This client keeps the whole body in err.error: {"error":{"message",...}}.
    const message = err.error?.error?.message;
    assert.ok(
      typeof message === 'string' && message.includes('invalid-model-id'),
      `chat with an unknown model: expected an OpenAI error body whose error.message names "invalid-model-id", got ${describeError(err)}`,
    );
  });

  await t.test('models.retrieve', async () => {
    const err = await expectRejection(client.models.retrieve('invalid-model-id'), 'models.retrieve("invalid-model-id")');
    assert.ok(err instanceof LlamaStackClient.NotFoundError, `models.retrieve of an unknown model: expected LlamaStackClient.NotFoundError, got ${describeError(err)}`);
    assert.equal(err.status, 404, `models.retrieve of an unknown model: expected HTTP 404, got ${describeError(err)}`);
  });
});
