// The checks are not vacuous: take the real central template, break one thing (drop the DLQ, a
// permission, an alarm; widen a policy) and the matching check must fail.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Template } from 'aws-cdk-lib/assertions';

import { checkAlarms, checkBusAndStream, checkFunction, checkLeastPrivilege, checkPipe, checkTable, checkTick } from './checks';
import { baseConfig, centralTemplate } from './helpers';

type Json = Record<string, any>;

const original = centralTemplate(baseConfig).toJSON();

function mutated(change: (resources: Record<string, Json>) => void): Template {
  const copy = structuredClone(original);
  change(copy.Resources);
  return Template.fromJSON(copy);
}

function byType(resources: Record<string, Json>, type: string): Json[] {
  return Object.values(resources).filter((r) => r.Type === type);
}

function policyWithSid(resources: Record<string, Json>, sid: string): Json {
  const p = byType(resources, 'AWS::IAM::Policy').find((x) => x.Properties.PolicyDocument.Statement.some((s: Json) => s.Sid === sid));
  assert.ok(p, `a policy has ${sid}`);
  return p;
}

function dropStatement(resources: Record<string, Json>, sid: string): void {
  const doc = policyWithSid(resources, sid).Properties.PolicyDocument;
  doc.Statement = doc.Statement.filter((s: Json) => s.Sid !== sid);
}

const cfg = baseConfig;

describe('the checks catch', () => {
  it('the unmodified template passing them all', () => {
    const t = Template.fromJSON(structuredClone(original));
    for (const check of [checkPipe, checkFunction, checkBusAndStream, checkTick]) check(t, cfg);
    checkLeastPrivilege(t);
    checkTable(t);
    checkAlarms(t);
  });

  const cases: [string, (r: Record<string, Json>) => void, (t: Template) => void][] = [
    ['a Pipe without its DLQ', (r) => delete byType(r, 'AWS::Pipes::Pipe')[0].Properties.SourceParameters.KinesisStreamParameters.DeadLetterConfig, (t) => checkPipe(t, cfg)],
    ['a Pipe role that may not write to the DLQ', (r) => dropStatement(r, 'DeadLetter'), (t) => checkPipe(t, cfg)],
    ['a Pipe role that may not invoke the Lambda', (r) => dropStatement(r, 'InvokeFunction'), (t) => checkPipe(t, cfg)],
    ['a Pipe role that may not read the stream', (r) => dropStatement(r, 'ReadStream'), (t) => checkPipe(t, cfg)],
    ['unbounded Pipe retries', (r) => (byType(r, 'AWS::Pipes::Pipe')[0].Properties.SourceParameters.KinesisStreamParameters.MaximumRetryAttempts = -1), (t) => checkPipe(t, cfg)],
    ['a Pipe without bisect', (r) => delete byType(r, 'AWS::Pipes::Pipe')[0].Properties.SourceParameters.KinesisStreamParameters.OnPartialBatchItemFailure, (t) => checkPipe(t, cfg)],
    ['a Lambda that may not use the table', (r) => dropStatement(r, 'Table'), (t) => checkFunction(t, cfg)],
    ['a Lambda that may not read the Slack secret', (r) => dropStatement(r, 'SlackSecret'), (t) => checkFunction(t, cfg)],
    ['a Lambda that may not call Bedrock', (r) => dropStatement(r, 'BedrockInferenceProfile'), (t) => checkFunction(t, cfg)],
    ['a Lambda that may not query the due index', (r) => policyWithSid(r, 'Table').Properties.PolicyDocument.Statement.find((s: Json) => s.Sid === 'Table').Resource.pop(), (t) => checkFunction(t, cfg)],
    ['Bedrock on every model', (r) => (policyWithSid(r, 'BedrockModelThroughProfile').Properties.PolicyDocument.Statement.find((s: Json) => s.Sid === 'BedrockModelThroughProfile').Resource = 'arn:aws:bedrock:*::foundation-model/*'), (t) => checkFunction(t, cfg)],
    ['a model usable outside the profile', (r) => delete policyWithSid(r, 'BedrockModelThroughProfile').Properties.PolicyDocument.Statement.find((s: Json) => s.Sid === 'BedrockModelThroughProfile').Condition, (t) => checkFunction(t, cfg)],
    ['a Resource "*" anywhere', (r) => (policyWithSid(r, 'SlackSecret').Properties.PolicyDocument.Statement.find((s: Json) => s.Sid === 'SlackSecret').Resource = '*'), checkLeastPrivilege],
    ['a wildcard action anywhere', (r) => (policyWithSid(r, 'PutRecords').Properties.PolicyDocument.Statement[0].Action = 'kinesis:*'), checkLeastPrivilege],
    ['a bus rule without its DLQ', (r) => delete byType(r, 'AWS::Events::Rule')[0].Properties.Targets[0].DeadLetterConfig, (t) => checkBusAndStream(t, cfg)],
    ['a stream keyed by something other than the account', (r) => (byType(r, 'AWS::Events::Rule')[0].Properties.Targets[0].KinesisParameters.PartitionKeyPath = '$.id'), (t) => checkBusAndStream(t, cfg)],
    ['a bus open to every AWS account', (r) => delete byType(r, 'AWS::Events::EventBusPolicy')[0].Properties.Statement.Condition, (t) => checkBusAndStream(t, cfg)],
    ['a table without point-in-time recovery', (r) => delete byType(r, 'AWS::DynamoDB::Table')[0].Properties.PointInTimeRecoverySpecification, checkTable],
    ['a table without the due index', (r) => delete byType(r, 'AWS::DynamoDB::Table')[0].Properties.GlobalSecondaryIndexes, checkTable],
    ['a tick with another payload', (r) => (byType(r, 'AWS::Scheduler::Schedule')[0].Properties.Target.Input = '{}'), (t) => checkTick(t, cfg)],
    ['a missing DLQ alarm', (r) => {
      for (const [k, v] of Object.entries(r)) if (v.Properties?.AlarmName === 'trailwatch-pipe-dlq') delete r[k];
    }, checkAlarms],
    ['an alarm that tells nobody', (r) => delete byType(r, 'AWS::CloudWatch::Alarm')[0].Properties.AlarmActions, checkAlarms],
    ['a silence alarm that stays OK without data', (r) => {
      for (const v of Object.values(r)) if (v.Properties?.AlarmName === 'trailwatch-silence') v.Properties.TreatMissingData = 'notBreaching';
    }, checkAlarms],
    ['no silence alarm', (r) => {
      for (const [k, v] of Object.entries(r)) if (v.Properties?.AlarmName === 'trailwatch-silence') delete r[k];
    }, checkAlarms],
    ['no throttle alarm', (r) => {
      for (const [k, v] of Object.entries(r)) if (v.Properties?.AlarmName === 'trailwatch-throttles') delete r[k];
    }, checkAlarms],
  ];
  for (const [name, change, check] of cases) {
    it(name, () => {
      assert.throws(() => check(mutated(change)), (e: Error) => e.name === 'AssertionError' || /expected one|no statement/.test(e.message));
    });
  }
});
