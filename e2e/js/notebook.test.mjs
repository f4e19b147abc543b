// The Bedrock inference notebook, step by step, with the official openai npm package.
// Each test is one notebook cell (same prompts, same parameters) and asserts on
// what came back. Environment: LLAMA_STACK_BASE_URL, MODEL_ID (see README.md).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import {
  BASE_URL,
  EXPECTED_MODEL_ID,
  EXPECTED_PROVIDER_RESOURCE_ID,
  TEST_TIMEOUT_MS,
  REQUEST_TIMEOUT_MS,
  assertCompletion,
  assertIncludes,
  assertStream,
  collectStream,
  describeError,
  discoverBedrockModelId,
  expectRejection,
  show,
  stripReasoning,
} from './common.mjs';

// Cell 2: the model id is discovered from GET /v1/models as the notebook does
// (the notebook's LLAMA_STACK_MODEL_ID override is left out on purpose: these tests
// check discovery). The notebook falls back to the example id; so do we, and the
// prerequisite test below fails if discovery did not find exactly MODEL_ID.
const DISCOVERED_MODEL_ID = await discoverBedrockModelId(BASE_URL);
const MODEL_ID = DISCOVERED_MODEL_ID || EXPECTED_MODEL_ID;

// Cell 2: the client, built as the notebook builds it. The notebook passes
// OPENAI_API_KEY or "" (the server needs no client key); the JS SDK refuses an empty
// key ("Missing credentials"), so an unset or empty key becomes "none".
// maxRetries: 0 so that the error cases fail fast instead of being retried.
const client = new OpenAI({
  baseURL: `${BASE_URL}/v1`,
  apiKey: process.env.OPENAI_API_KEY || 'none',
  maxRetries: 0,
  timeout: REQUEST_TIMEOUT_MS,
});

const opts = { timeout: TEST_TIMEOUT_MS };

test('prerequisites: GET /v1/models lists the Bedrock model (cell 1)', opts, async () => {
  const response = await fetch(`${BASE_URL}/v1/models`, { signal: AbortSignal.timeout(5000) });
  const text = await response.text();
  assert.equal(response.status, 200, `GET /v1/models: expected HTTP 200, got ${response.status} with body ${show(text)}`);
  let models;
  assert.doesNotThrow(() => {
    models = JSON.parse(text);
  }, `GET /v1/models: expected a JSON body, got ${show(text)}`);
  const data = models.data;
  assert.ok(Array.isArray(data), `GET /v1/models: expected a "data" array, got ${show(models)}`);

  const bedrockModels = data.filter((m) => (m?.custom_metadata || {}).provider_id === 'bedrock');
  assert.ok(bedrockModels.length > 0, `GET /v1/models: expected an entry with custom_metadata.provider_id "bedrock", got ${show(data)}`);
  const m = bedrockModels.find((x) => x.id === EXPECTED_MODEL_ID);
  assert.ok(m, `GET /v1/models: expected a Bedrock model with id ${show(EXPECTED_MODEL_ID)}, got ids ${show(bedrockModels.map((x) => x.id))}`);
  assert.equal(m.object, 'model', `GET /v1/models: expected object "model" on ${show(m.id)}, got ${show(m)}`);
  assert.equal(
    m.custom_metadata.provider_resource_id,
    EXPECTED_PROVIDER_RESOURCE_ID,
    `GET /v1/models: expected custom_metadata.provider_resource_id ${show(EXPECTED_PROVIDER_RESOURCE_ID)}, got ${show(m.custom_metadata)}`,
  );
  assert.equal(m.custom_metadata.model_type, 'llm', `GET /v1/models: expected custom_metadata.model_type "llm", got ${show(m.custom_metadata)}`);

  // Cell 2's auto-discovery picks the first Bedrock model: it must be MODEL_ID.
  assert.equal(
    DISCOVERED_MODEL_ID,
    EXPECTED_MODEL_ID,
    `model auto-discovery (first /v1/models entry with provider_id "bedrock"): expected ${show(EXPECTED_MODEL_ID)}, got ${show(DISCOVERED_MODEL_ID)}`,
  );
});

test('initialize client: client.models.list() returns the Bedrock model (cell 2)', opts, async () => {
  const page = await client.models.list();
  const data = page.data;
  assert.ok(Array.isArray(data), `client.models.list(): expected a page with a data array, got ${show(page)}`);
  const m = data.find((x) => x.id === MODEL_ID);
  assert.ok(m, `client.models.list(): expected an entry with id ${show(MODEL_ID)}, got ${show(data)}`);
  assert.equal(m.object, 'model', `client.models.list(): expected object "model", got ${show(m)}`);
  assert.equal(m.custom_metadata?.provider_id, 'bedrock', `client.models.list(): expected custom_metadata.provider_id "bedrock", got ${show(m)}`);
});

test('Example 1: simple chat completion (non-streaming)', opts, async () => {
  const response = await client.chat.completions.create({
    model: MODEL_ID,
    messages: [{ role: 'user', content: 'Which planet do humans live on?' }],
    stream: false,
  });
  assertCompletion(response, {
    what: 'Example 1',
    modelId: MODEL_ID,
    prompt: 'Which planet do humans live on?',
    contains: 'Earth',
  });
});

test('Example 2: streaming response', opts, async () => {
  const stream = await client.chat.completions.create({
    model: MODEL_ID,
    messages: [{ role: 'user', content: "What's the name of the Sun in Latin?" }],
    stream: true,
  });
  const collected = await collectStream(stream);
  assertStream(collected, {
    what: 'Example 2 (stream)',
    modelId: MODEL_ID,
    prompt: "What's the name of the Sun in Latin?",
    contains: 'Sol',
    includeUsage: false,
  });
});

test('Example 2 with stream_options.include_usage: a final usage chunk', opts, async () => {
  const stream = await client.chat.completions.create({
    model: MODEL_ID,
    messages: [{ role: 'user', content: "What's the name of the Sun in Latin?" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const collected = await collectStream(stream);
  assertStream(collected, {
    what: 'Example 2 (stream, include_usage)',
    modelId: MODEL_ID,
    prompt: "What's the name of the Sun in Latin?",
    contains: 'Sol',
    includeUsage: true,
  });
});

test('Example 3: multi-turn conversation', opts, async () => {
  const conversation = [
    { role: 'user', content: 'My name is Alice' },
    { role: 'assistant', content: 'Nice to meet you, Alice! How can I help you today?' },
    { role: 'user', content: 'What is my name?' },
  ];
  const response = await client.chat.completions.create({
    model: MODEL_ID,
    messages: conversation,
    stream: false,
  });
  const reply = assertCompletion(response, { what: 'Example 3', modelId: MODEL_ID, prompt: 'What is my name?' });
  // The notebook's check: context retention.
  assert.ok(reply.toLowerCase().includes('alice'), `Example 3: expected the reply to mention "alice" (context retention), got ${show(reply)}`);
  assertIncludes(stripReasoning(reply), 'Your name is Alice.', 'Example 3: answer without <reasoning>');
});

test('Example 4: system message, Shakespeare', opts, async () => {
  const response = await client.chat.completions.create({
    model: MODEL_ID,
    messages: [
      {
        role: 'system',
        content: 'You are Shakespeare. Respond only in Shakespearean English with dramatic flair.',
      },
      {
        role: 'user',
        content: 'Tell me about the weather today',
      },
    ],
    stream: false,
  });
  assertCompletion(response, {
    what: 'Example 4 (Shakespeare)',
    modelId: MODEL_ID,
    prompt: 'Tell me about the weather today',
    contains: 'Hark',
  });
});

test('Example 4: system message, concise Python expert', opts, async () => {
  const response = await client.chat.completions.create({
    model: MODEL_ID,
    messages: [
      {
        role: 'system',
        content: 'You are a concise Python expert. Give brief, code-focused answers.',
      },
      {
        role: 'user',
        content: 'How do I read a JSON file?',
      },
    ],
    stream: false,
  });
  assertCompletion(response, {
    what: 'Example 4 (Python expert)',
    modelId: MODEL_ID,
    prompt: 'How do I read a JSON file?',
    contains: 'json.load',
  });
});

const HAIKU_LINES = ['Code flows like rivers', 'Debugging whispers in loops', 'Logic blooms at dawn'];

function assertHaiku(text, what) {
  const lines = text.split('\n').map((l) => l.trim());
  assert.equal(lines.length, 3, `${what}: expected a 3-line haiku after stripping <reasoning>, got ${lines.length} line(s): ${show(text)}`);
  assert.deepEqual(lines, HAIKU_LINES, `${what}: expected the double's haiku ${show(HAIKU_LINES.join('\n'))}, got ${show(text)}`);
}

test('Example 5: sampling, low temperature (0.1) haiku', opts, async () => {
  // Port of the notebook's _haiku(temp): retries once if only <reasoning> came back.
  let attempts = 0;
  async function haiku(temp) {
    let response;
    for (let attempt = 0; attempt < 2; attempt++) {
      attempts++;
      response = await client.chat.completions.create({
        model: MODEL_ID,
        messages: [
          {
            role: 'user',
            content:
              attempt === 0
                ? 'Write a haiku (5-7-5 syllables) about coding. Output ONLY the 3-line haiku.'
                : 'Write a haiku (5-7-5 syllables) about coding. Output ONLY the 3-line haiku. Start immediately with the first line.',
          },
        ],
        temperature: temp,
        max_tokens: 400,
        stream: false,
      });
      assertCompletion(response, { what: `Example 5 (temperature ${temp}, attempt ${attempt + 1})`, modelId: MODEL_ID });
      const cleaned = stripReasoning(response.choices[0].message.content || '');
      if (cleaned) return cleaned;
    }
    return response.choices[0].message.content || '';
  }

  const text = await haiku(0.1);
  // The double always answers after its reasoning: a retry means the answer was lost.
  assert.equal(attempts, 1, `Example 5 (temperature 0.1): expected an answer outside <reasoning> on the first attempt, needed ${attempts} attempts; final text ${show(text)}`);
  assertHaiku(text, 'Example 5 (temperature 0.1)');
});

test('Example 5: sampling, high temperature (0.9, top_p 0.95) haiku', opts, async () => {
  const responseCreative = await client.chat.completions.create({
    model: MODEL_ID,
    messages: [
      {
        role: 'user',
        content: 'Write a haiku (5-7-5 syllables) about coding. Output ONLY the 3-line haiku. Start immediately with the first line.',
      },
    ],
    temperature: 0.9,
    top_p: 0.95,
    max_tokens: 400,
    stream: false,
  });
  const content = assertCompletion(responseCreative, {
    what: 'Example 5 (temperature 0.9)',
    modelId: MODEL_ID,
    prompt: 'Write a haiku (5-7-5 syllables) about coding. Output ONLY the 3-line haiku. Start immediately with the first line.',
  });
  // The notebook prints _strip_reasoning(content) or content.
  assertHaiku(stripReasoning(content || '') || content, 'Example 5 (temperature 0.9)');
});

test('Example 5: limiting output length (max_tokens 400)', opts, async () => {
  const responseShort = await client.chat.completions.create({
    model: MODEL_ID,
    messages: [{ role: 'user', content: 'Explain quantum computing' }],
    max_tokens: 400,
    stream: false,
  });
  const content = assertCompletion(responseShort, {
    what: 'Example 5 (max_tokens 400)',
    modelId: MODEL_ID,
    prompt: 'Explain quantum computing',
  });
  const used = responseShort.usage.completion_tokens;
  assert.ok(used <= 400, `Example 5 (max_tokens 400): expected usage.completion_tokens <= 400, got ${used}`);
  const words = stripReasoning(content).split(/\s+/).filter(Boolean).length;
  assert.ok(words > 120, `Example 5 (max_tokens 400): expected the double's long answer (> 120 words) in full, got ${words} words: ${show(content)}`);
});

test('Example 5 (beyond the notebook): max_tokens 50 cuts the answer, finish_reason "length"', opts, async () => {
  const response = await client.chat.completions.create({
    model: MODEL_ID,
    messages: [{ role: 'user', content: 'Explain quantum computing' }],
    max_tokens: 50,
    stream: false,
  });
  assertCompletion(response, { what: 'Example 5 (max_tokens 50)', modelId: MODEL_ID, finishReason: 'length' });
  const used = response.usage.completion_tokens;
  assert.ok(used <= 50, `Example 5 (max_tokens 50): expected usage.completion_tokens <= 50, got ${used}`);
});

test('Example 6: error handling, valid request succeeds', opts, async () => {
  const response = await client.chat.completions.create({
    model: MODEL_ID,
    messages: [{ role: 'user', content: 'Hello!' }],
    stream: false,
  });
  assertCompletion(response, { what: 'Example 6 (valid request)', modelId: MODEL_ID, prompt: 'Hello!', contains: 'Hello' });
});

test('Example 6: error handling, invalid model -> 404 NotFoundError', opts, async () => {
  const err = await expectRejection(
    client.chat.completions.create({
      model: 'invalid-model-id',
      messages: [{ role: 'user', content: 'Hello!' }],
      stream: false,
    }),
    'Example 6 (model "invalid-model-id")',
  );
  assert.ok(err instanceof OpenAI.NotFoundError, `Example 6 (invalid model): expected openai.NotFoundError, got ${describeError(err)}`);
  assert.equal(err.status, 404, `Example 6 (invalid model): expected HTTP 404, got ${describeError(err)}`);
  // The notebook's handler branches on "404" in str(e).
  assert.ok(String(err).includes('404'), `Example 6 (invalid model): expected the error text to contain "404", got ${show(String(err))}`);
  assertIncludes(err.message, 'invalid-model-id', 'Example 6 (invalid model): error message');
  // OpenAI error body: {"error":{"message","type","param","code"}}.
  const body = err.error;
  assert.ok(body && typeof body === 'object', `Example 6 (invalid model): expected an OpenAI error body {"error":{...}}, got ${describeError(err)}`);
  assertIncludes(body.message, 'invalid-model-id', 'Example 6 (invalid model): error.message');
  assert.ok(typeof body.type === 'string' && body.type.length > 0, `Example 6 (invalid model): expected a non-empty error.type, got ${show(body)}`);
  assert.ok('param' in body && 'code' in body, `Example 6 (invalid model): expected error.param and error.code keys (null allowed), got ${show(body)}`);
});

test('Example 6 (beyond the notebook): malformed requests -> 400 BadRequestError naming the field', opts, async (t) => {
  await t.test('temperature as a string', async () => {
    const err = await expectRejection(
      client.chat.completions.create({
        model: MODEL_ID,
        messages: [{ role: 'user', content: 'Hello!' }],
        temperature: '0.7',
        stream: false,
      }),
      'temperature "0.7" (a string)',
    );
    assert.ok(err instanceof OpenAI.BadRequestError, `temperature as a string: expected openai.BadRequestError (400), got ${describeError(err)}`);
    assert.equal(err.status, 400, `temperature as a string: expected HTTP 400, got ${describeError(err)}`);
    assertIncludes(err.message, 'temperature', 'temperature as a string: error message');
  });

  await t.test('messages missing', async () => {
    const err = await expectRejection(client.chat.completions.create({ model: MODEL_ID, stream: false }), 'no messages');
    assert.ok(err instanceof OpenAI.BadRequestError, `messages missing: expected openai.BadRequestError (400), got ${describeError(err)}`);
    assert.equal(err.status, 400, `messages missing: expected HTTP 400, got ${describeError(err)}`);
    assertIncludes(err.message, 'messages', 'messages missing: error message');
  });
});

test('Example 7: batch processing', opts, async () => {
  const questions = [
    ['What is the capital of France?', 'Paris'],
    ['What is 2 + 2?', '4'],
    ['Who wrote Romeo and Juliet?', 'Shakespeare'],
  ];
  for (const [i, [question, expected]] of questions.entries()) {
    const response = await client.chat.completions.create({
      model: MODEL_ID,
      messages: [{ role: 'user', content: question }],
      max_tokens: 400,
      stream: false,
    });
    const answer = stripReasoning(
      assertCompletion(response, { what: `Example 7 Q${i + 1}`, modelId: MODEL_ID, prompt: question }),
    );
    assertIncludes(answer, expected, `Example 7 Q${i + 1} (${question}) answer without <reasoning>`);
  }
});
