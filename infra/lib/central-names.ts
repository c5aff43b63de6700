// Fixed names in the central account, shared by the stack, its alarms and the tests.

/** Fixed names in the central account: ARNs in trust and key policies are built from them. */
export const CENTRAL_NAMES = {
  bus: 'trailwatch',
  /** The rule that puts forwarded CloudTrail events on the stream. */
  busRule: 'trailwatch-to-stream',
  /** The rule that puts member heartbeats on the stream. */
  heartbeatRule: 'trailwatch-heartbeat-to-stream',
  archive: 'trailwatch',
  stream: 'trailwatch',
  pipe: 'trailwatch',
  function: 'trailwatch',
  tick: 'trailwatch-tick',
  /** The Scheduler group of the tick (the default group, as no group is named): the Scheduler role's source. */
  tickGroup: 'default',
  busDlq: 'trailwatch-bus-dlq',
  pipeDlq: 'trailwatch-pipe-dlq',
  topic: 'trailwatch-alarms',
} as const;
