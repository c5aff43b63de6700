// The checks are not vacuous: take the real central and member templates, break one thing (drop
// a DLQ, a retry policy, a permission, a trust condition, an alarm; flip an alarm's missing-data
// treatment; widen a pattern or a key policy) and the matching check must fail.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';

import { Template } from 'aws-cdk-lib/assertions';

import { MEMBER_PATTERNS_FILE } from '../config';
import { centralBusArn } from '../lib/central-stack';
import {
  centralAlarmRows,
  checkAlarms,
  checkArchive,
  checkBusAndStream,
  checkFunction,
  checkKey,
  checkLeastPrivilege,
  checkMember,
  checkPipe,
  checkTable,
  checkTick,
} from './checks';
import { baseConfig, build, centralTemplate } from './helpers';

type Json = Record<string, any>;
type Resources = Record<string, Json>;

const cfg = baseConfig;
const patterns = JSON.parse(fs.readFileSync(MEMBER_PATTERNS_FILE, 'utf8'));
const original = centralTemplate(cfg).toJSON();
const member = build(cfg).members[0];
const memberOriginal = Template.fromStack(member).toJSON();

function mutate(template: Json, change: (resources: Resources) => void): Template {
  const copy = structuredClone(template);
  change(copy.Resources);
  return Template.fromJSON(copy);
}

function byType(resources: Resources, type: string): Json[] {
  return Object.values(resources).filter((r) => r.Type === type);
}

/** The resource whose CDK path ends with `suffix` (one). */
function byPath(resources: Resources, suffix: string): Json {
  const hits = Object.values(resources).filter((r) => String(r.Metadata?.['aws:cdk:path'] ?? '').endsWith(suffix));
  assert.equal(hits.length, 1, `one resource at */${suffix}`);
  return hits[0];
}

function policyWithSid(resources: Resources, sid: string): Json {
  const p = byType(resources, 'AWS::IAM::Policy').find((x) => x.Properties.PolicyDocument.Statement.some((s: Json) => s.Sid === sid));
  assert.ok(p, `a policy has ${sid}`);
  return p;
}

function dropStatement(resources: Resources, sid: string): void {
  const doc = policyWithSid(resources, sid).Properties.PolicyDocument;
  doc.Statement = doc.Statement.filter((s: Json) => s.Sid !== sid);
}

function keyStatement(resources: Resources, sid: string): Json {
  const s = byType(resources, 'AWS::KMS::Key')[0].Properties.KeyPolicy.Statement.find((x: Json) => x.Sid === sid);
  assert.ok(s, `the key policy has ${sid}`);
  return s;
}

function dropKeyStatement(resources: Resources, sid: string): void {
  const doc = byType(resources, 'AWS::KMS::Key')[0].Properties.KeyPolicy;
  doc.Statement = doc.Statement.filter((s: Json) => s.Sid !== sid);
}

function alarmNamed(resources: Resources, name: string): [string, Json] {
  const hit = Object.entries(resources).find(([, v]) => v.Properties?.AlarmName === name);
  assert.ok(hit, `an alarm ${name}`);
  return hit;
}

function ruleNamed(resources: Resources, name: string): Json {
  const r = byType(resources, 'AWS::Events::Rule').find((x) => x.Properties.Name === name);
  assert.ok(r, `a rule ${name}`);
  return r;
}

const bus = (t: Template) => checkBusAndStream(t, cfg, patterns);
const alarms = (t: Template) => checkAlarms(t, cfg);
const key = (t: Template) => checkKey(t, cfg);
const archive = (t: Template) => checkArchive(t, cfg);
const fn = (t: Template) => checkFunction(t, cfg);
const pipe = (t: Template) => checkPipe(t, cfg);
const tick = (t: Template) => checkTick(t, cfg);
const memberCheck = (t: Template) =>
  checkMember(t, centralBusArn(cfg), patterns, { account: member.account, region: member.region }, { schedule: 'rate(5 minutes)', emails: cfg.alarms.emails });

type Case = [string, (r: Resources) => void, (t: Template) => void];

const centralCases: Case[] = [
  // The Pipe.
  ['a Pipe without its DLQ', (r) => delete byType(r, 'AWS::Pipes::Pipe')[0].Properties.SourceParameters.KinesisStreamParameters.DeadLetterConfig, pipe],
  ['a Pipe role that may not write to the DLQ', (r) => dropStatement(r, 'DeadLetter'), pipe],
  ['a Pipe role that may not invoke the Lambda', (r) => dropStatement(r, 'InvokeFunction'), pipe],
  ['a Pipe role that may not read the stream', (r) => dropStatement(r, 'ReadStream'), pipe],
  ['unbounded Pipe retries', (r) => (byType(r, 'AWS::Pipes::Pipe')[0].Properties.SourceParameters.KinesisStreamParameters.MaximumRetryAttempts = -1), pipe],
  ['a Pipe without bisect', (r) => delete byType(r, 'AWS::Pipes::Pipe')[0].Properties.SourceParameters.KinesisStreamParameters.OnPartialBatchItemFailure, pipe],
  ['a Pipe role any pipe may assume', (r) => delete byPath(r, '/PipeRole/Resource').Properties.AssumeRolePolicyDocument.Statement[0].Condition.ArnEquals, pipe],
  ['a Pipe role another account\'s pipe may assume', (r) => delete byPath(r, '/PipeRole/Resource').Properties.AssumeRolePolicyDocument.Statement[0].Condition.StringEquals, pipe],
  // The Lambda.
  ['a Lambda that may not use the table', (r) => dropStatement(r, 'Table'), fn],
  ['a Lambda that may not read the Slack secret', (r) => dropStatement(r, 'SlackSecret'), fn],
  ['a Lambda that may not call Bedrock', (r) => dropStatement(r, 'BedrockInferenceProfile'), fn],
  ['a Lambda that may not query the due index', (r) => policyWithSid(r, 'Table').Properties.PolicyDocument.Statement.find((s: Json) => s.Sid === 'Table').Resource.pop(), fn],
  ['Bedrock on every model', (r) => (policyWithSid(r, 'BedrockModelThroughProfile').Properties.PolicyDocument.Statement.find((s: Json) => s.Sid === 'BedrockModelThroughProfile').Resource = 'arn:aws:bedrock:*::foundation-model/*'), fn],
  ['a model usable outside the profile', (r) => delete policyWithSid(r, 'BedrockModelThroughProfile').Properties.PolicyDocument.Statement.find((s: Json) => s.Sid === 'BedrockModelThroughProfile').Condition, fn],
  ['a Lambda without reserved concurrency', (r) => delete byType(r, 'AWS::Lambda::Function')[0].Properties.ReservedConcurrentExecutions, fn],
  ['a Lambda without the heartbeat silence threshold', (r) => delete byType(r, 'AWS::Lambda::Function')[0].Properties.Environment.Variables.TRAILWATCH_HEARTBEAT_SILENCE, fn],
  ['a Lambda that distrusts the management account', (r) => {
    const env = byType(r, 'AWS::Lambda::Function')[0].Properties.Environment.Variables;
    env.TRAILWATCH_TRUSTED_ACCOUNTS = env.TRAILWATCH_TRUSTED_ACCOUNTS.split(',').filter((a: string) => a !== cfg.managementAccount).join(',');
  }, fn],
  ['a Lambda that distrusts the central account', (r) => {
    const env = byType(r, 'AWS::Lambda::Function')[0].Properties.Environment.Variables;
    env.TRAILWATCH_TRUSTED_ACCOUNTS = env.TRAILWATCH_TRUSTED_ACCOUNTS.split(',').filter((a: string) => a !== cfg.central.account).join(',');
  }, fn],
  // IAM in general.
  ['a Resource "*" anywhere', (r) => (policyWithSid(r, 'SlackSecret').Properties.PolicyDocument.Statement.find((s: Json) => s.Sid === 'SlackSecret').Resource = '*'), checkLeastPrivilege],
  ['a wildcard action anywhere', (r) => (policyWithSid(r, 'PutRecords').Properties.PolicyDocument.Statement[0].Action = 'kinesis:*'), checkLeastPrivilege],
  // The bus and its rules.
  ['a bus rule without its DLQ', (r) => delete ruleNamed(r, 'trailwatch-to-stream').Properties.Targets[0].DeadLetterConfig, bus],
  ['a heartbeat rule without its DLQ', (r) => delete ruleNamed(r, 'trailwatch-heartbeat-to-stream').Properties.Targets[0].DeadLetterConfig, bus],
  ['a bus rule that retries for 24 hours before its DLQ hears of it', (r) => (ruleNamed(r, 'trailwatch-to-stream').Properties.Targets[0].RetryPolicy.MaximumEventAgeInSeconds = 86400), bus],
  ['a heartbeat rule without a retry policy', (r) => delete ruleNamed(r, 'trailwatch-heartbeat-to-stream').Properties.Targets[0].RetryPolicy, bus],
  ['a stream keyed by something other than the account', (r) => (ruleNamed(r, 'trailwatch-to-stream').Properties.Targets[0].KinesisParameters.PartitionKeyPath = '$.id'), bus],
  ['a bus open to every AWS account', (r) => delete byType(r, 'AWS::Events::EventBusPolicy')[0].Properties.Statement.Condition, bus],
  ['a central rule that takes every aws.* event (aws.partner/* too)', (r) => (ruleNamed(r, 'trailwatch-to-stream').Properties.EventPattern = { source: [{ prefix: 'aws.' }] }), bus],
  ['a central rule that takes a detail-type no member rule forwards', (r) => ruleNamed(r, 'trailwatch-to-stream').Properties.EventPattern['detail-type'].push('Object Created'), bus],
  ['no central heartbeat rule', (r) => {
    for (const [k, v] of Object.entries(r)) if (v.Properties?.Name === 'trailwatch-heartbeat-to-stream') delete r[k];
  }, bus],
  ['a heartbeat rule that takes any scheduled event', (r) => delete ruleNamed(r, 'trailwatch-heartbeat-to-stream').Properties.EventPattern.resources, bus],
  ['a rule role any rule may assume', (r) => delete byPath(r, '/BusToStreamRole/Resource').Properties.AssumeRolePolicyDocument.Statement[0].Condition.ArnEquals, bus],
  ['a bus DLQ any rule may write to', (r) => {
    const policy = byType(r, 'AWS::SQS::QueuePolicy').find((q) => JSON.stringify(q).includes('EventBridgeDeadLetters'));
    delete policy!.Properties.PolicyDocument.Statement.find((s: Json) => s.Sid === 'EventBridgeDeadLetters').Condition;
  }, bus],
  // The archive.
  ['no archive', (r) => {
    for (const [k, v] of Object.entries(r)) if (v.Type === 'AWS::Events::Archive') delete r[k];
  }, archive],
  ['an archive kept one day', (r) => (byType(r, 'AWS::Events::Archive')[0].Properties.RetentionDays = 1), archive],
  ['an archive under an AWS-owned key', (r) => delete byType(r, 'AWS::Events::Archive')[0].Properties.KmsKeyIdentifier, archive],
  ['an archive of every event on the bus', (r) => delete byType(r, 'AWS::Events::Archive')[0].Properties.EventPattern, archive],
  ['an archive without heartbeats', (r) => byType(r, 'AWS::Events::Archive')[0].Properties.EventPattern.$or.pop(), archive],
  // The key.
  ['the account root allowed kms:*', (r) => (keyStatement(r, 'KeyAdministration').Action = 'kms:*'), key],
  ['the administrators allowed to decrypt', (r) => keyStatement(r, 'KeyAdministration').Action.push('kms:Decrypt'), key],
  ['the administrators allowed to create grants', (r) => keyStatement(r, 'KeyAdministration').Action.push('kms:Create*'), key],
  ['the Lambda role missing from the key policy', (r) => dropKeyStatement(r, 'FunctionThroughTableAndSecret'), key],
  ['the Pipe role missing from the key policy', (r) => dropKeyStatement(r, 'PipeReadsStreamWritesDlq'), key],
  ['the rule role missing from the key policy', (r) => dropKeyStatement(r, 'RulesWriteTheStream'), key],
  ['no operator may use the key', (r) => dropKeyStatement(r, 'OperatorsThroughServices'), key],
  ['the deploying role unable to create the table', (r) => dropKeyStatement(r, 'DeploymentGrantsForTableAndSecret'), key],
  ['a key user outside its services', (r) => delete keyStatement(r, 'FunctionThroughTableAndSecret').Condition, key],
  ['the account root using the key through a service', (r) => {
    const doc = byType(r, 'AWS::KMS::Key')[0].Properties.KeyPolicy;
    doc.Statement.push({ ...keyStatement(r, 'OperatorsThroughServices'), Sid: 'Account', Principal: { AWS: keyStatement(r, 'KeyAdministration').Principal.AWS } });
  }, key],
  ['a kms: statement in an IAM policy', (r) => policyWithSid(r, 'PutRecords').Properties.PolicyDocument.Statement.push({ Sid: 'Key', Effect: 'Allow', Action: 'kms:GenerateDataKey', Resource: '*' }), key],
  ['an archive EventBridge may not encrypt', (r) => dropKeyStatement(r, 'EventBridgeArchiveOfTheBus'), key],
  // The table and the tick.
  ['a table without point-in-time recovery', (r) => delete byType(r, 'AWS::DynamoDB::Table')[0].Properties.PointInTimeRecoverySpecification, checkTable],
  ['a table without the due index', (r) => delete byType(r, 'AWS::DynamoDB::Table')[0].Properties.GlobalSecondaryIndexes, checkTable],
  ['a tick with another payload', (r) => (byType(r, 'AWS::Scheduler::Schedule')[0].Properties.Target.Input = '{}'), tick],
  ['a tick role any schedule group may assume', (r) => delete byPath(r, '/TickRole/Resource').Properties.AssumeRolePolicyDocument.Statement[0].Condition.ArnEquals, tick],
  // Alarms in general.
  ['an alarm that tells nobody', (r) => delete byType(r, 'AWS::CloudWatch::Alarm')[0].Properties.AlarmActions, alarms],
  ['an alarm that does not say it recovered', (r) => delete byType(r, 'AWS::CloudWatch::Alarm')[0].Properties.OKActions, alarms],
  ['no alarm subscriber', (r) => {
    for (const [k, v] of Object.entries(r)) if (v.Type === 'AWS::SNS::Subscription') delete r[k];
  }, alarms],
  ['a topic CloudWatch alarms may not publish to', (r) => {
    const doc = byType(r, 'AWS::SNS::TopicPolicy')[0].Properties.PolicyDocument;
    doc.Statement = doc.Statement.filter((s: Json) => s.Effect !== 'Allow');
  }, alarms],
  ['a rule alarm on the default bus (no EventBusName): it never sees data', (r) => {
    const [, a] = alarmNamed(r, 'trailwatch-bus-rule-failed');
    a.Properties.Dimensions = a.Properties.Dimensions.filter((d: Json) => d.Name !== 'EventBusName');
  }, alarms],
  ['a silent-sources alarm that waits 15 minutes', (r) => (alarmNamed(r, 'trailwatch-silent-sources')[1].Properties.EvaluationPeriods = 3), alarms],
  ['an extra alarm nobody listed', (r) => {
    const [, a] = alarmNamed(r, 'trailwatch-throttles');
    r.Extra = structuredClone(a);
    r.Extra.Properties.AlarmName = 'trailwatch-extra';
  }, alarms],
];

// Every central alarm: removing it, or flipping its missing-data treatment, fails the check.
for (const row of centralAlarmRows(Template.fromJSON(original), cfg)) {
  centralCases.push([`no ${row.name} alarm`, (r) => delete r[alarmNamed(r, row.name)[0]], alarms]);
  const flipped = row.missing === 'breaching' ? 'notBreaching' : 'breaching';
  centralCases.push([`a ${row.name} alarm whose missing data is ${flipped}`, (r) => (alarmNamed(r, row.name)[1].Properties.TreatMissingData = flipped), alarms]);
}

const memberCases: Case[] = [
  ['a member rule without its DLQ', (r) => delete ruleNamed(r, 'trailwatch-forward-1').Properties.Targets[0].DeadLetterConfig, memberCheck],
  ['a member rule without a retry policy', (r) => delete ruleNamed(r, 'trailwatch-forward-2').Properties.Targets[0].RetryPolicy, memberCheck],
  ['a member rule that retries for 24 hours', (r) => (ruleNamed(r, 'trailwatch-forward-1').Properties.Targets[0].RetryPolicy.MaximumEventAgeInSeconds = 86400), memberCheck],
  ['a heartbeat without its DLQ', (r) => delete ruleNamed(r, 'trailwatch-heartbeat').Properties.Targets[0].DeadLetterConfig, memberCheck],
  ['no heartbeat', (r) => {
    for (const [k, v] of Object.entries(r)) if (v.Properties?.Name === 'trailwatch-heartbeat') delete r[k];
  }, memberCheck],
  ['a heartbeat every hour', (r) => (ruleNamed(r, 'trailwatch-heartbeat').Properties.ScheduleExpression = 'rate(1 hour)'), memberCheck],
  ['a heartbeat under another name', (r) => (ruleNamed(r, 'trailwatch-heartbeat').Properties.Name = 'heartbeat'), memberCheck],
  ['a forwarding rule with a generated name', (r) => delete ruleNamed(r, 'trailwatch-forward-3').Properties.Name, memberCheck],
  ['a member role any rule may assume', (r) => delete byType(r, 'AWS::IAM::Role')[0].Properties.AssumeRolePolicyDocument.Statement[0].Condition.ArnLike, memberCheck],
  ['a member role with a generated name', (r) => delete byType(r, 'AWS::IAM::Role')[0].Properties.RoleName, memberCheck],
  ['a member DLQ any rule may write to', (r) => {
    const doc = byType(r, 'AWS::SQS::QueuePolicy')[0].Properties.PolicyDocument;
    delete doc.Statement.find((s: Json) => s.Sid === 'EventBridgeDeadLetters').Condition;
  }, memberCheck],
  ['a member DLQ that one rule may not write to', (r) => {
    const doc = byType(r, 'AWS::SQS::QueuePolicy')[0].Properties.PolicyDocument;
    doc.Statement.find((s: Json) => s.Sid === 'EventBridgeDeadLetters').Condition.ArnEquals['aws:SourceArn'].pop();
  }, memberCheck],
  ['an unencrypted member DLQ', (r) => delete byType(r, 'AWS::SQS::Queue')[0].Properties.SqsManagedSseEnabled, memberCheck],
  ['no member DLQ alarm', (r) => delete r[alarmNamed(r, 'trailwatch-forward-dlq')[0]], memberCheck],
  ['a member DLQ alarm whose missing data is breaching', (r) => (alarmNamed(r, 'trailwatch-forward-dlq')[1].Properties.TreatMissingData = 'breaching'), memberCheck],
  ['a member DLQ alarm nobody receives', (r) => {
    for (const [k, v] of Object.entries(r)) if (v.Type === 'AWS::SNS::Subscription') delete r[k];
  }, memberCheck],
  ['a member topic CloudWatch may not publish to', (r) => {
    const doc = byType(r, 'AWS::SNS::TopicPolicy')[0].Properties.PolicyDocument;
    doc.Statement = doc.Statement.filter((s: Json) => s.Effect !== 'Allow');
  }, memberCheck],
];

function expectFailure(check: (t: Template) => void, t: Template): void {
  assert.throws(() => check(t), (e: Error) => e.name === 'AssertionError' || /expected one|no statement/.test(e.message));
}

describe('the checks catch', () => {
  it('the unmodified templates passing them all', () => {
    const t = Template.fromJSON(structuredClone(original));
    for (const check of [pipe, fn, bus, tick, key, archive, alarms, checkLeastPrivilege, checkTable]) check(t);
    memberCheck(Template.fromJSON(structuredClone(memberOriginal)));
  });

  for (const [name, change, check] of centralCases) {
    it(name, () => expectFailure(check, mutate(original, change)));
  }
  for (const [name, change, check] of memberCases) {
    it(name, () => expectFailure(check, mutate(memberOriginal, change)));
  }
});
