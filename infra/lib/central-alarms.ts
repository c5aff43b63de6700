// The central stack's alarms, all on the trailwatch-alarms topic. Missing data is breaching
// where data is guaranteed while trailwatch runs (the minute tick, the heartbeats), so no data
// means something stopped; it is not breaching for counts that are published only when something
// happens. README "Alarms" lists them with the same words.

import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';

import { METRICS, TrailwatchConfig } from '../config';
import { CENTRAL_NAMES } from './central-names';
import type { CentralStack } from './central-stack';
import { topicAlarm } from './shared';

const { GREATER_THAN_OR_EQUAL_TO_THRESHOLD: AT_LEAST, LESS_THAN_THRESHOLD: BELOW } = cloudwatch.ComparisonOperator;
const { BREACHING, NOT_BREACHING } = cloudwatch.TreatMissingData;
const FIVE_MINUTES = cdk.Duration.minutes(5);

/** Metrics of a rule on a custom bus carry both dimensions, EventBusName and RuleName
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html). */
function ruleMetric(bus: string, rule: string, metricName: string): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: 'AWS/Events',
    metricName,
    dimensionsMap: { EventBusName: bus, RuleName: rule },
    statistic: 'Sum',
    period: FIVE_MINUTES,
  });
}

/** EventBridge Pipes metrics, per pipe
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-monitoring.html). */
function pipeMetric(pipe: string, metricName: string): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: 'AWS/EventBridge/Pipes',
    metricName,
    dimensionsMap: { PipeName: pipe },
    statistic: 'Sum',
    period: FIVE_MINUTES,
  });
}

/** The Lambda's own counters (EMF, no dimensions). */
function custom(metricName: string, statistic = 'Sum'): cloudwatch.Metric {
  return new cloudwatch.Metric({ namespace: METRICS.namespace, metricName, statistic, period: FIVE_MINUTES });
}

export function addCentralAlarms(stack: CentralStack, cfg: TrailwatchConfig): void {
  const topic = stack.alarmTopic;
  const count = (id: string, name: string, description: string, metric: cloudwatch.IMetric) =>
    topicAlarm(stack, id, topic, { name, description, metric, threshold: 1, comparison: AT_LEAST, periods: 1, missing: NOT_BREACHING });

  // ---- the stream, the queues, the function.
  topicAlarm(stack, 'IteratorAgeAlarm', topic, {
    name: 'trailwatch-iterator-age',
    description: 'The Pipe is falling behind the stream: events reach Slack late',
    metric: stack.stream.metricGetRecordsIteratorAgeMilliseconds({ statistic: 'Maximum', period: cdk.Duration.minutes(1) }),
    threshold: cfg.alarms.iteratorAgeSeconds * 1000,
    comparison: AT_LEAST,
    periods: 5,
    missing: NOT_BREACHING,
  });
  // SQS publishes queue metrics only while a queue is active, so an empty DLQ has no data.
  count(
    'PipeDlqAlarm',
    'trailwatch-pipe-dlq',
    'A batch of Kinesis records the Lambda could not take went to the Pipe dead-letter queue (the message points at the records; README "Dead-letter queues and recovery")',
    stack.pipeDlq.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: FIVE_MINUTES }),
  );
  count(
    'BusDlqAlarm',
    'trailwatch-bus-dlq',
    'Events from the central bus could not be put on the stream (the message is the event; replay from the archive)',
    stack.busDlq.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: FIVE_MINUTES }),
  );
  count('FunctionErrorsAlarm', 'trailwatch-function-errors', 'The trailwatch Lambda failed (ingest or tick)', stack.fn.metricErrors({ statistic: 'Sum', period: FIVE_MINUTES }));
  count(
    'ThrottlesAlarm',
    'trailwatch-throttles',
    'The trailwatch Lambda was throttled: ticks or Pipe batches wait, events reach Slack late',
    stack.fn.metricThrottles({ statistic: 'Sum', period: FIVE_MINUTES }),
  );

  // ---- what the Lambda counts.
  count('QuarantinedAlarm', 'trailwatch-quarantined', 'Records that could not be decoded were quarantined (kept, redacted, counted)', custom(METRICS.quarantined));
  count(
    'OfflineFallbackAlarm',
    'trailwatch-offline-fallback',
    'Bedrock failed (throttling, timeout, invalid output): summaries fell back to offline templates',
    custom(METRICS.offlineFallbacks),
  );
  count('SlackFailureAlarm', 'trailwatch-slack-failure', 'Slack messages failed after retries', custom(METRICS.slackFailures));
  count(
    'StoreRejectedAlarm',
    'trailwatch-store-rejected',
    'The table refused records for good: the Pipe retries them, then dead-letters them',
    custom(METRICS.storeRejected),
  );

  // ---- the central rules. EventBridge publishes FailedInvocations and
  // InvocationsFailedToBeSentToDlq only when they are not zero (eb-monitoring, above), so no data
  // means no failure.
  for (const [idPart, rule, alarm, what] of [
    ['BusRule', CENTRAL_NAMES.busRule, 'trailwatch-bus-rule', 'CloudTrail events'],
    ['HeartbeatRule', CENTRAL_NAMES.heartbeatRule, 'trailwatch-heartbeat-rule', 'heartbeats'],
  ] as const) {
    count(
      `${idPart}FailedAlarm`,
      `${alarm}-failed`,
      `The central rule ${rule} failed for good to put ${what} on the stream (they went to the bus DLQ)`,
      ruleMetric(CENTRAL_NAMES.bus, rule, 'FailedInvocations'),
    );
    count(
      `${idPart}DlqFailedAlarm`,
      `${alarm}-dlq-failed`,
      `The central rule ${rule} could not even dead-letter ${what}: replay them from the archive`,
      ruleMetric(CENTRAL_NAMES.bus, rule, 'InvocationsFailedToBeSentToDlq'),
    );
  }

  // ---- silence. Each of these has data for as long as trailwatch runs.
  // The scheduler invokes the function every minute.
  topicAlarm(stack, 'SilenceAlarm', topic, {
    name: 'trailwatch-silence',
    description: 'The trailwatch Lambda was not invoked for 10 minutes: the schedule, the Pipe or the function is stopped, and nothing is watched',
    metric: stack.fn.metricInvocations({ statistic: 'Sum', period: FIVE_MINUTES }),
    threshold: 1,
    comparison: BELOW,
    periods: 2,
    missing: BREACHING,
  });
  // Every member stack sends a heartbeat every few minutes, so the central heartbeat rule runs.
  topicAlarm(stack, 'PipelineStoppedAlarm', topic, {
    name: 'trailwatch-pipeline-stopped',
    description: 'No member heartbeat reached the stream for 15 minutes: the central bus, its policy or the heartbeat rule is broken, or every member stopped forwarding',
    metric: ruleMetric(CENTRAL_NAMES.bus, CENTRAL_NAMES.heartbeatRule, 'Invocations'),
    threshold: 1,
    comparison: BELOW,
    periods: 3,
    missing: BREACHING,
  });
  // Heartbeats flow through the Pipe, so it invokes the function every few minutes.
  topicAlarm(stack, 'PipeStoppedAlarm', topic, {
    name: 'trailwatch-pipe-stopped',
    description: 'The Pipe invoked nothing for 15 minutes although heartbeats flow through it: it is stopped, disabled or failing',
    metric: pipeMetric(CENTRAL_NAMES.pipe, 'Invocations'),
    threshold: 1,
    comparison: BELOW,
    periods: 3,
    missing: BREACHING,
  });
  count('PipeFailuresAlarm', 'trailwatch-pipe-failures', 'Pipe executions failed (the Lambda target failed or could not be invoked)', pipeMetric(CENTRAL_NAMES.pipe, 'ExecutionFailed'));
  // The Lambda writes SilentSources on every tick (0 when all is well): no data means no tick.
  topicAlarm(stack, 'SilentSourcesAlarm', topic, {
    name: 'trailwatch-silent-sources',
    description: `At least one account and region sent no heartbeat for ${cfg.heartbeat.silenceAfter}: its member rules, role or stack were changed, or it cannot reach the central bus`,
    metric: custom(METRICS.silentSources, 'Maximum'),
    threshold: 1,
    comparison: AT_LEAST,
    periods: 1,
    missing: BREACHING,
  });
}
