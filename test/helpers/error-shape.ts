import { expect } from 'vitest';

/** The contract's error shape and nothing else: `{error:{code, message, details?}}` (CONTRACT §4). */
export function expectErrorShape(body: unknown, what = ''): void {
  expect(body, what).toBeTypeOf('object');
  const b = body as { error?: { code?: unknown; message?: unknown } };
  expect(Object.keys(b), what).toEqual(['error']);
  expect(b.error!.code, what).toMatch(/^[a-z_]+$/);
  expect(b.error!.message, what).toBeTypeOf('string');
  for (const k of Object.keys(b.error!)) expect(['code', 'message', 'details'], what).toContain(k);
}
