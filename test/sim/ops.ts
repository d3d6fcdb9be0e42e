/**
 * The simulation's operations: small, abstract and shrinkable. An operation names users and earlier
 * entities by index (a refund's `ref` picks among the charges sent so far), so removing operations while
 * shrinking keeps every remaining one meaningful. `plan.ts` turns each into concrete jobs and requests.
 */
import fc from 'fast-check';
import type { ConfigToggles } from './config.ts';

/** Minutes before the current instant an event happened; negative = ahead of it (−4 allowed, −10 too far). */
export type Late = number;

export type ChargeKind =
  | 'amount-points' | 'amount-credits' | 'amount-gems'
  | 'script' | 'tts' | 'video' | 'caption' | 'llm' | 'llm-other'
  | 'unpriced';
export type HoldKind = 'amount-points' | 'amount-credits' | 'tts-chars' | 'video-input' | 'script' | 'llm' | 'caption' | 'no-estimate';
export type Expiry = 'default' | 'none' | 'past' | 'near' | 'far';
export type RefundPart = 'full' | 'half' | 'one' | 'over';

export type Op =
  | { k: 'grant'; u: number; asset: 'points' | 'credits' | 'gems'; amount: number; expiry: Expiry; hours: number }
  | { k: 'charge'; u: number; what: ChargeKind; policy: 'postpaid' | 'guarded'; n: number; late: Late }
  | { k: 'hold'; u: number; what: HoldKind; n: number; ttl: number }
  /** POST /v1/holds again with an earlier hold's event_id: the same body (→ that hold) or another (→ 409). */
  | { k: 'holdReplay'; ref: number; alter: boolean }
  | { k: 'settle'; ref: number; how: 'estimate' | 'lower' | 'higher' | 'usage'; n: number; late: Late }
  | { k: 'release'; ref: number }
  | { k: 'refund'; ref: number; part: RefundPart }
  /** A charge and its refund in one wave; `early`: the refund is enqueued before its charge. */
  | { k: 'chargeRefund'; u: number; what: ChargeKind; policy: 'postpaid' | 'guarded'; n: number; early: boolean; part: RefundPart }
  | { k: 'refundUnknown'; u: number }
  | { k: 'reward'; u: number; type: 'liked' | 'imported' | 'unknown'; version: '1' | '2' | '3' | '' | 'none'; late: Late }
  | { k: 'affinity'; u: number; dev: number; rule: 'chat' | 'gift' | 'rude' | 'poke' | 'nope'; units: number; late: Late }
  | { k: 'adjust'; u: number; dev: number; delta: number }
  | { k: 'replay'; ref: number }
  | { k: 'conflict'; ref: number }
  | { k: 'config'; t: ConfigToggles }
  | { k: 'advance'; ms: number }
  | { k: 'decay' }
  | { k: 'sweep' }
  | { k: 'check' };

export type OpKind = Op['k'];

/**
 * Features that trigger the issue-9 defects; `--exclude` drops them to look past known divergences:
 * past — grants whose expires_at has passed (item 1); collide — user/device names whose naive level-reward
 * ids collide (item 2); config-replay — replays and conflicts sent after a config change (item 3);
 * debt-refund — refunds of charges whose debt a grant paid (item 4); early-refund — refunds sent before
 * their charge, or of a charge never applied (item 6); decay — decay runs (item 7); empty-version — reward
 * events without event_version (item 8).
 */
export const FEATURES = ['past', 'collide', 'config-replay', 'debt-refund', 'early-refund', 'decay', 'empty-version'] as const;
export type Feature = (typeof FEATURES)[number];

const user = fc.nat({ max: 4 });
const late: fc.Arbitrary<Late> = fc.oneof(
  { weight: 12, arbitrary: fc.constant(0) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 900 }) },
  { weight: 1, arbitrary: fc.constant(-4) },
  { weight: 1, arbitrary: fc.constant(-10) },
);
const chargeKind = fc.constantFrom<ChargeKind>(
  'amount-points', 'amount-points', 'amount-credits', 'amount-gems', 'script', 'tts', 'tts', 'video', 'caption', 'llm', 'llm', 'llm-other', 'unpriced',
);
const policy = fc.constantFrom<'postpaid' | 'guarded'>('postpaid', 'guarded');
const part = fc.constantFrom<RefundPart>('full', 'full', 'half', 'one', 'over');
const toggles: fc.Arbitrary<ConfigToggles> = fc.record({
  ttsDivisor: fc.constantFrom<10 | 4>(10, 4),
  llm: fc.constantFrom<'A' | 'B'>('A', 'B'),
  video: fc.boolean(),
  liked: fc.constantFrom<'v12' | 'v23' | 'off'>('v12', 'v12', 'v23', 'off'),
  chat: fc.constantFrom<'on' | 'disabled' | 'off'>('on', 'on', 'disabled', 'off'),
  gems: fc.boolean(),
});
const MIN = 60_000;
const HOUR = 60 * MIN;

/** One operation; weights give a busy mix with every kind present in a few hundred operations. */
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 14, arbitrary: fc.record({ k: fc.constant('grant' as const), u: user, asset: fc.constantFrom('points', 'points', 'credits', 'gems') as fc.Arbitrary<'points' | 'credits' | 'gems'>, amount: fc.integer({ min: 1, max: 200 }), expiry: fc.constantFrom<Expiry>('default', 'default', 'none', 'past', 'near', 'near', 'far'), hours: fc.nat({ max: 47 }) }) },
  { weight: 20, arbitrary: fc.record({ k: fc.constant('charge' as const), u: user, what: chargeKind, policy, n: fc.integer({ min: 1, max: 120 }), late }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('hold' as const), u: user, what: fc.constantFrom<HoldKind>('amount-points', 'amount-credits', 'tts-chars', 'tts-chars', 'video-input', 'script', 'llm', 'caption', 'no-estimate'), n: fc.integer({ min: 1, max: 120 }), ttl: fc.constantFrom(30, 90, 240, 1440) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('holdReplay' as const), ref: fc.nat(), alter: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('settle' as const), ref: fc.nat(), how: fc.constantFrom<'estimate' | 'lower' | 'higher' | 'usage'>('estimate', 'lower', 'higher', 'usage'), n: fc.integer({ min: 1, max: 40 }), late }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('release' as const), ref: fc.nat() }) },
  { weight: 8, arbitrary: fc.record({ k: fc.constant('refund' as const), ref: fc.nat(), part }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('chargeRefund' as const), u: user, what: chargeKind, policy, n: fc.integer({ min: 1, max: 120 }), early: fc.boolean(), part }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('refundUnknown' as const), u: user }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('reward' as const), u: user, type: fc.constantFrom<'liked' | 'imported' | 'unknown'>('liked', 'liked', 'liked', 'imported', 'unknown'), version: fc.constantFrom<'1' | '2' | '3' | '' | 'none'>('1', '1', '2', '3', '', 'none'), late }) },
  { weight: 18, arbitrary: fc.record({ k: fc.constant('affinity' as const), u: user, dev: fc.nat({ max: 1 }), rule: fc.constantFrom<'chat' | 'gift' | 'rude' | 'poke' | 'nope'>('chat', 'chat', 'gift', 'gift', 'rude', 'poke', 'poke', 'nope'), units: fc.integer({ min: 1, max: 4 }), late }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('adjust' as const), u: user, dev: fc.nat({ max: 1 }), delta: fc.integer({ min: -60, max: 160 }) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('replay' as const), ref: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('conflict' as const), ref: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('config' as const), t: toggles }) },
  { weight: 7, arbitrary: fc.record({ k: fc.constant('advance' as const), ms: fc.oneof(fc.constantFrom(30_000, 5 * MIN, HOUR, 6 * HOUR, 24 * HOUR, 3 * 24 * HOUR), fc.integer({ min: MIN, max: 30 * HOUR })) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('decay' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('sweep' as const) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('check' as const) }) },
);

/** A run's operations: up to `max`, shrinkable down to one. */
export const opsArb = (max: number): fc.Arbitrary<Op[]> => fc.array(opArb, { minLength: 1, maxLength: max, size: 'max' });

/** Every operation kind (the short CI run checks that each is generated). */
export const OP_KINDS = ['grant', 'charge', 'hold', 'holdReplay', 'settle', 'release', 'refund', 'chargeRefund', 'refundUnknown', 'reward', 'affinity', 'adjust', 'replay', 'conflict', 'config', 'advance', 'decay', 'sweep', 'check'] as const satisfies readonly OpKind[];
type MissingKind = Exclude<OpKind, (typeof OP_KINDS)[number]>;
const _allKinds: MissingKind extends never ? true : never = true;
void _allKinds;

/** One line per operation, for transcripts. */
export function describeOp(op: Op): string {
  const { k, ...rest } = op;
  return `${k} ${JSON.stringify(rest)}`;
}
