// Shared settings and assertions for the end-to-end suites in this folder.
// The suites (*.test.mjs) talk to a running llama-stack-go server whose Bedrock
// provider points at a test double; see README.md beside this file.

import assert from 'node:assert/strict';

/** Server root without /v1, as the notebook's BASE_URL (default http://localhost:8321). */
export const BASE_URL = (process.env.LLAMA_STACK_BASE_URL || 'http://localhost:8321').replace(/\/+$/, '');

/** The client-facing model id the server must list and answer with. */
export const EXPECTED_MODEL_ID = process.env.MODEL_ID || 'bedrock/openai.gpt-oss-20b-1:0';

/** The upstream (Bedrock) id registered for EXPECTED_MODEL_ID. */
export const EXPECTED_PROVIDER_RESOURCE_ID = 'openai.gpt-oss-20b-1:0';

/** Per-test limit: every call goes to a local server and a local double. */
export const TEST_TIMEOUT_MS = 30_000;

/** Per-request limit handed to the SDK clients. */
export const REQUEST_TIMEOUT_MS = 20_000;

/** Renders a value for a failure message, cut to a readable size. */
export function show(value) {
  let text;
  if (typeof value === 'string') {
    text = JSON.stringify(value);
  } else {
    try {
      text = JSON.stringify(value, null, 2);
    } catch {
      text = String(value);
    }
  }
  if (text === undefined) text = String(value);
  return text.length > 3000 ? `${text.slice(0, 3000)}… (${text.length} chars)` : text;
}

/**
 * Port of the notebook's _strip_reasoning:
 *   re.sub(r"<reasoning>[\s\S]*?</reasoning>", "", text).strip()
 * (Python's str.strip and JS's trim both drop surrounding whitespace.)
 */
export function stripReasoning(text) {
  return text.replace(/<reasoning>[\s\S]*?<\/reasoning>/g, '').trim();
}

/**
 * Port of the notebook's _discover_bedrock_model_id: the id of the first model in
 * GET /v1/models whose custom_metadata.provider_id is "bedrock", or null on any failure.
 */
export async function discoverBedrockModelId(baseUrl) {
  try {
    const r = await fetch(`${baseUrl}/v1/models`, { signal: AbortSignal.timeout(5000) });
    if (!r.ok) return null;
    const body = await r.json();
    for (const m of body?.data || []) {
      if ((m?.custom_metadata || {}).provider_id === 'bedrock') return m.id;
    }
  } catch {
    return null;
  }
  return null;
}

/** Fails unless text is a string that contains needle; says what was expected and what came back. */
export function assertIncludes(text, needle, what) {
  assert.equal(typeof text, 'string', `${what}: expected a string containing ${show(needle)}, got ${show(text)}`);
  assert.ok(text.includes(needle), `${what}: expected it to contain ${show(needle)}, got ${show(text)}`);
}

/** Fails unless usage has prompt_tokens > 0, completion_tokens > 0 and total_tokens = their sum. */
export function assertUsage(usage, what) {
  assert.ok(usage && typeof usage === 'object', `${what}: expected a usage object, got ${show(usage)}`);
  const { prompt_tokens: p, completion_tokens: c, total_tokens: t } = usage;
  assert.ok(Number.isInteger(p) && p > 0, `${what}: expected usage.prompt_tokens to be an integer > 0, got ${show(usage)}`);
  assert.ok(Number.isInteger(c) && c > 0, `${what}: expected usage.completion_tokens to be an integer > 0, got ${show(usage)}`);
  assert.equal(t, p + c, `${what}: expected usage.total_tokens = prompt_tokens + completion_tokens = ${p + c}, got ${show(usage)}`);
}

/**
 * Checks a non-streaming chat completion and returns its message content.
 *
 * - prompt: the last user message; the double reasons `The user asks: "<prompt>".
 *   Answer directly.` inside <reasoning> tags, which the server moves out of content
 *   into message.reasoning_content.
 * - contains: text the answer must contain.
 * - finishReason: expected finish_reason (default "stop").
 */
export function assertCompletion(resp, { what, modelId, prompt, contains, finishReason = 'stop' }) {
  assert.ok(resp && typeof resp === 'object', `${what}: expected a chat completion object, got ${show(resp)}`);
  assert.equal(resp.object, 'chat.completion', `${what}: expected object "chat.completion", got ${show(resp.object)} in ${show(resp)}`);
  assert.ok(typeof resp.id === 'string' && resp.id.startsWith('chatcmpl-'), `${what}: expected an id starting with "chatcmpl-", got ${show(resp.id)}`);
  assert.equal(resp.model, modelId, `${what}: expected response.model to be the client-facing id ${show(modelId)} (never the upstream id), got ${show(resp.model)}`);
  assert.ok(Array.isArray(resp.choices) && resp.choices.length === 1, `${what}: expected exactly one choice, got ${show(resp.choices)}`);
  const choice = resp.choices[0];
  assert.equal(choice.message?.role, 'assistant', `${what}: expected choices[0].message.role "assistant", got ${show(choice.message)}`);
  assert.equal(choice.finish_reason, finishReason, `${what}: expected finish_reason ${show(finishReason)}, got ${show(choice.finish_reason)}`);
  const content = choice.message.content;
  assert.equal(typeof content, 'string', `${what}: expected choices[0].message.content to be a string, got ${show(content)}`);
  if (prompt !== undefined) {
    // The server separates gpt-oss reasoning from the answer (its default):
    // content is clean and the reasoning comes in message.reasoning_content.
    const want = `The user asks: "${prompt}". Answer directly.`;
    assert.ok(!content.includes('<reasoning>'), `${what}: expected content without <reasoning> tags, got ${show(content)}`);
    assert.equal(choice.message.reasoning_content, want, `${what}: expected message.reasoning_content to be the double's reasoning ${show(want)}, got ${show(choice.message)}`);
  }
  if (contains !== undefined) assertIncludes(content, contains, `${what}: choices[0].message.content`);
  assertUsage(resp.usage, what);
  return content;
}

/** Reads a chat completion stream to the end and returns what it carried. */
export async function collectStream(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  let content = '';
  let reasoning = '';
  for (const chunk of chunks) {
    // Same accumulation as the notebook's streaming loop.
    if (chunk.choices && chunk.choices[0] && chunk.choices[0].delta && chunk.choices[0].delta.content) {
      content += chunk.choices[0].delta.content;
    }
    if (chunk.choices && chunk.choices[0] && chunk.choices[0].delta && chunk.choices[0].delta.reasoning_content) {
      reasoning += chunk.choices[0].delta.reasoning_content;
    }
  }
  return { chunks, content, reasoning };
}

/**
 * Checks a collected stream: one id and the client-facing model on every chunk, a
 * first chunk with role "assistant", a single finish_reason "stop" on the last chunk
 * that has choices, the answer text, and the usage chunk only when includeUsage.
 */
export function assertStream({ chunks, content, reasoning }, { what, modelId, prompt, contains, includeUsage }) {
  const summary = () => show(chunks.map((c) => ({ model: c.model, choices: c.choices, usage: c.usage })));
  assert.ok(chunks.length >= 2, `${what}: expected at least a role chunk and a content chunk, got ${chunks.length} chunk(s): ${summary()}`);
  const id = chunks[0].id;
  assert.ok(typeof id === 'string' && id.startsWith('chatcmpl-'), `${what}: expected chunk ids starting with "chatcmpl-", got ${show(id)}`);
  chunks.forEach((c, i) => {
    assert.equal(c.model, modelId, `${what}: expected chunk ${i} model to be the client-facing id ${show(modelId)} (never the upstream id), got ${show(c.model)}`);
    assert.equal(c.object, 'chat.completion.chunk', `${what}: expected chunk ${i} object "chat.completion.chunk", got ${show(c.object)}`);
    assert.equal(c.id, id, `${what}: expected every chunk to carry the id of the first (${show(id)}), chunk ${i} has ${show(c.id)}`);
  });

  const withChoices = chunks.filter((c) => Array.isArray(c.choices) && c.choices.length > 0);
  assert.ok(withChoices.length > 0, `${what}: expected chunks with choices, got ${summary()}`);
  assert.equal(withChoices[0].choices[0].delta?.role, 'assistant', `${what}: expected the first chunk's delta.role to be "assistant", got ${show(withChoices[0].choices[0])}`);

  const finishes = withChoices
    .map((c, i) => ({ i, reason: c.choices[0].finish_reason }))
    .filter((f) => f.reason != null);
  assert.deepEqual(
    finishes.map((f) => f.reason),
    ['stop'],
    `${what}: expected exactly one finish_reason, "stop", got ${show(finishes)} in ${summary()}`,
  );
  assert.equal(finishes[0].i, withChoices.length - 1, `${what}: expected finish_reason "stop" on the last chunk with choices, got it on chunk ${finishes[0].i} of ${withChoices.length}: ${summary()}`);

  if (prompt !== undefined) {
    // Bedrock streams each reasoning piece wrapped in its own <reasoning> tags; the
    // server moves them to delta.reasoning_content, so content is the answer alone.
    assert.ok(!content.includes('<reasoning>') && !content.includes('</reasoning>'), `${what}: expected streamed content without <reasoning> tags, got ${show(content)}`);
    const want = `The user asks: "${prompt}". Answer directly.`;
    assert.equal(reasoning, want, `${what}: expected the delta.reasoning_content pieces to join to the double's reasoning ${show(want)}, got ${show(reasoning)}`);
  }
  if (contains !== undefined) {
    assertIncludes(content, contains, `${what}: concatenated delta.content`);
    assertIncludes(stripReasoning(content), contains, `${what}: concatenated delta.content without <reasoning> blocks`);
  }

  const last = chunks[chunks.length - 1];
  if (includeUsage) {
    assert.ok(Array.isArray(last.choices) && last.choices.length === 0, `${what}: with stream_options.include_usage, expected a final chunk with choices: [], got ${show(last)}`);
    assertUsage(last.usage, `${what}: final usage chunk`);
    chunks.slice(0, -1).forEach((c, i) => {
      assert.ok(c.usage == null, `${what}: expected usage only on the final chunk, chunk ${i} has ${show(c.usage)}`);
    });
  } else {
    chunks.forEach((c, i) => {
      assert.ok(c.usage == null, `${what}: without stream_options.include_usage, expected no usage on any chunk, chunk ${i} has ${show(c.usage)}`);
    });
    assert.equal(withChoices.length, chunks.length, `${what}: without stream_options.include_usage, expected no chunk with empty choices, got ${summary()}`);
  }
}

/**
 * Awaits a call that must fail and returns the error; fails with what came back
 * when the call succeeds instead.
 */
export async function expectRejection(promise, what) {
  try {
    const result = await promise;
    assert.fail(`${what}: expected the call to fail, it returned ${show(result)}`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    return err;
  }
}

/** Describes an SDK error for a failure message. */
export function describeError(err) {
  return show({ name: err?.constructor?.name, status: err?.status, message: err?.message, error: err?.error });
}
