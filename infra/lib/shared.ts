// Small pieces the central and member stacks share: cdk-nag acknowledgements, checkov skips on
// one resource, the alarm topic's publish permission and an alarm that notifies a topic.

import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';

/** Every alarm trailwatch creates is named `trailwatch-...` (the topic policies rely on it). */
export const ALARM_PREFIX = 'trailwatch-';

/** A cdk-nag finding acknowledged on one construct, with the reason it is acceptable. */
export function acknowledge(scope: Construct, id: string, reason: string): void {
  cdk.Validations.of(scope).acknowledge({ id: `AwsSolutions::${id}`, reason });
}

/** A checkov check skipped on this one resource only (checkov reads `Metadata.checkov.skip`). */
export function checkovSkip(resource: cdk.CfnResource, id: string, comment: string): void {
  resource.addMetadata('checkov', { skip: [{ id, comment }] });
}

/**
 * CloudWatch alarms publish to the topic. The topic policy CDK writes (TLS only) replaces the
 * default policy, so the alarm service is allowed here, for this account's trailwatch alarms only
 * (an alarm's ARN is the source AWS names when the policy refuses it:
 * https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger).
 */
export function allowAlarmsToPublish(topic: sns.Topic): void {
  const { account, region, partition } = cdk.Stack.of(topic);
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'TrailwatchAlarmsPublish',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: {
        ArnLike: { 'aws:SourceArn': `arn:${partition}:cloudwatch:${region}:${account}:alarm:${ALARM_PREFIX}*` },
        StringEquals: { 'aws:SourceAccount': account },
      },
    }),
  );
}

export interface AlarmSpec {
  /** Full alarm name, `trailwatch-...`. */
  readonly name: string;
  readonly description: string;
  readonly metric: cloudwatch.IMetric;
  readonly threshold: number;
  readonly comparison: cloudwatch.ComparisonOperator;
  readonly periods: number;
  /** Breaching where no data means the watched thing stopped; not breaching for event counts. */
  readonly missing: cloudwatch.TreatMissingData;
}

/** An alarm that notifies `topic` when it fires and when it recovers. */
export function topicAlarm(scope: Construct, id: string, topic: sns.ITopic, spec: AlarmSpec): cloudwatch.Alarm {
  if (!spec.name.startsWith(ALARM_PREFIX)) throw new Error(`alarm ${spec.name} must start with ${ALARM_PREFIX}`);
  const alarm = new cloudwatch.Alarm(scope, id, {
    alarmName: spec.name,
    alarmDescription: spec.description,
    metric: spec.metric,
    threshold: spec.threshold,
    evaluationPeriods: spec.periods,
    comparisonOperator: spec.comparison,
    treatMissingData: spec.missing,
  });
  const action = new cwActions.SnsAction(topic);
  alarm.addAlarmAction(action);
  alarm.addOkAction(action);
  return alarm;
}
