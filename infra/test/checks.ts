// What the central and member templates must say, as functions over a template so that the
// mutation tests can show each check fails when a DLQ, a permission, a condition or an alarm
// goes missing, or an alarm's missing-data treatment flips.

import assert from 'node:assert/strict';

import { Template } from 'aws-cdk-lib/assertions';

import { ENV, METRICS, TABLE, TABLE_ACTIONS, TICK_INPUT, TrailwatchConfig, parseModelId, watchedAccounts } from '../config';
import { KEY_ADMIN_ACTIONS } from '../lib/central-key';
import { CENTRAL_NAMES } from '../lib/central-names';
import { detailTypesOf } from '../lib/member-stack';
import { asList, getAtt, logicalIdByPath, only, resourcesOfType, statement, statementsOfRole } from './helpers';

type Json = Record<string, any>;

const partitionJoin = (rest: string): Json => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, rest]] });

function ids(t: Template) {
  return {
    key: logicalIdByPath(t, '/Key/Resource'),
    stream: logicalIdByPath(t, '/Stream/Resource'),
    bus: logicalIdByPath(t, '/Bus/Resource'),
    busRule: logicalIdByPath(t, '/BusToStream'),
    heartbeatRule: logicalIdByPath(t, '/HeartbeatToStream'),
    table: logicalIdByPath(t, '/Table/Resource'),
    secret: logicalIdByPath(t, '/SlackSecret/Resource'),
    fn: logicalIdByPath(t, '/Function/Resource'),
    fnRole: logicalIdByPath(t, '/FunctionRole/Resource'),
    pipeRole: logicalIdByPath(t, '/PipeRole/Resource'),
    pipeDlq: logicalIdByPath(t, '/PipeDlq/Resource'),
    busDlq: logicalIdByPath(t, '/BusDlq/Resource'),
    busRole: logicalIdByPath(t, '/BusToStreamRole/Resource'),
    tickRole: logicalIdByPath(t, '/TickRole/Resource'),
    topic: logicalIdByPath(t, '/AlarmTopic/Resource'),
    logs: logicalIdByPath(t, '/FunctionLogs/Resource'),
  };
}

/** The role trusts only `service`, under exactly `condition` (none for Lambda). */
function trustsOnly(t: Template, roleId: string, service: string, condition?: Json): void {
  const role = t.toJSON().Resources[roleId];
  assert.deepEqual(role.Properties.AssumeRolePolicyDocument.Statement, [
    { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: service }, ...(condition === undefined ? {} : { Condition: condition }) },
  ]);
  assert.equal(role.Properties.ManagedPolicyArns, undefined, `${roleId} has no managed policies`);
  assert.equal(role.Properties.Policies, undefined, `${roleId} has no other inline policies`);
}

/** `aws:SourceAccount` is the central account and `aws:SourceArn` exactly `sourceArn`. */
function sourceCondition(cfg: TrailwatchConfig, sourceArn: Json | Json[]): Json {
  return { StringEquals: { 'aws:SourceAccount': cfg.central.account }, ArnEquals: { 'aws:SourceArn': sourceArn } };
}

function centralRuleArn(cfg: TrailwatchConfig, rule: string): Json {
  return partitionJoin(`:events:${cfg.central.region}:${cfg.central.account}:rule/${CENTRAL_NAMES.bus}/${rule}`);
}

/** Kinesis -> Pipe -> Lambda with bisect, bounded retries, a bounded record age and an SQS DLQ. */
export function checkPipe(t: Template, cfg: TrailwatchConfig): void {
  const id = ids(t);
  const [, pipe] = only(t, 'AWS::Pipes::Pipe');
  const p = pipe.Properties;
  assert.equal(p.Name, CENTRAL_NAMES.pipe, 'the name the role trust and the alarms use');
  assert.deepEqual(p.Source, getAtt(id.stream));
  assert.deepEqual(p.Target, getAtt(id.fn));
  assert.deepEqual(p.RoleArn, getAtt(id.pipeRole));
  const k = p.SourceParameters?.KinesisStreamParameters;
  assert.ok(k, 'the Pipe reads Kinesis');
  assert.deepEqual(k.DeadLetterConfig, { Arn: getAtt(id.pipeDlq) }, 'failed records go to the Pipe DLQ');
  assert.equal(k.OnPartialBatchItemFailure, 'AUTOMATIC_BISECT');
  assert.equal(k.StartingPosition, 'TRIM_HORIZON');
  assert.equal(k.BatchSize, cfg.pipe.batchSize);
  assert.equal(k.MaximumBatchingWindowInSeconds, cfg.pipe.batchingWindowSeconds);
  assert.equal(k.ParallelizationFactor, cfg.pipe.parallelizationFactor);
  assert.equal(k.MaximumRetryAttempts, cfg.pipe.maximumRetryAttempts);
  assert.ok(Number.isInteger(k.MaximumRetryAttempts) && k.MaximumRetryAttempts >= 0 && k.MaximumRetryAttempts <= 10, 'retries are bounded');
  assert.equal(k.MaximumRecordAgeInSeconds, cfg.pipe.maximumRecordAgeSeconds);
  assert.ok(k.MaximumRecordAgeInSeconds >= 60, 'record age is bounded (not -1)');
  assert.deepEqual(p.TargetParameters, { LambdaFunctionParameters: { InvocationType: 'REQUEST_RESPONSE' } });

  trustsOnly(t, id.pipeRole, 'pipes.amazonaws.com', sourceCondition(cfg, partitionJoin(`:pipes:${cfg.central.region}:${cfg.central.account}:pipe/${CENTRAL_NAMES.pipe}`)));
  const s = statementsOfRole(t, id.pipeRole);
  assert.deepEqual(
    s.map((x) => x.Sid),
    ['ReadStream', 'InvokeFunction', 'DeadLetter'],
  );
  assert.deepEqual(statement(s, 'ReadStream').Resource, getAtt(id.stream));
  assert.ok(asList(statement(s, 'ReadStream').Action).includes('kinesis:GetRecords'));
  assert.ok(asList(statement(s, 'ReadStream').Action).every((a: string) => /^kinesis:(Describe|Get|List|Subscribe)/.test(a)), 'read only');
  assert.deepEqual(statement(s, 'InvokeFunction'), { Sid: 'InvokeFunction', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: getAtt(id.fn) });
  assert.deepEqual(statement(s, 'DeadLetter'), { Sid: 'DeadLetter', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: getAtt(id.pipeDlq) });

  const dlq = t.toJSON().Resources[id.pipeDlq].Properties;
  assert.deepEqual(dlq.KmsMasterKeyId, getAtt(id.key));
  assert.equal(dlq.MessageRetentionPeriod, 14 * 24 * 3600);
}

/** The Lambda's own policy: exactly these statements, each on one resource. */
export function checkFunction(t: Template, cfg: TrailwatchConfig): void {
  const id = ids(t);
  const region = cfg.central.region;
  const account = cfg.central.account;
  const [fnId, fn] = only(t, 'AWS::Lambda::Function');
  assert.equal(fnId, id.fn);
  const p = fn.Properties;
  assert.equal(p.FunctionName, CENTRAL_NAMES.function);
  assert.equal(p.Runtime, 'provided.al2023');
  assert.deepEqual(p.Architectures, ['arm64']);
  assert.equal(p.Handler, 'bootstrap');
  assert.equal(p.MemorySize, cfg.lambda.memoryMb);
  assert.equal(p.Timeout, cfg.lambda.timeoutSeconds);
  assert.deepEqual(p.Role, getAtt(id.fnRole));
  assert.deepEqual(p.LoggingConfig, { LogFormat: 'JSON', LogGroup: { Ref: id.logs } });
  const reserved = cfg.lambda.reservedConcurrency;
  assert.equal(p.ReservedConcurrentExecutions, reserved === 'none' ? undefined : reserved, 'reserved concurrency as configured');
  if (reserved !== 'none') assert.ok(Number.isInteger(p.ReservedConcurrentExecutions) && p.ReservedConcurrentExecutions >= 1);

  const env = p.Environment.Variables;
  const expected = Object.values(ENV).filter((v) => v !== ENV.quietAfter || cfg.heartbeat.quietAfter !== undefined);
  assert.deepEqual(Object.keys(env).sort(), expected.sort(), 'every variable the Lambda reads, nothing else');
  assert.deepEqual(env[ENV.table], { Ref: id.table });
  assert.deepEqual(env[ENV.slackSecretArn], { Ref: id.secret });
  assert.equal(env[ENV.modelId], cfg.bedrock.modelId);
  assert.equal(env[ENV.summarizer], 'bedrock');
  assert.equal(env[ENV.lang], cfg.lang);
  assert.equal(env[ENV.tz], cfg.timeZone);
  assert.equal(env[ENV.window], cfg.window);
  assert.equal(env[ENV.grace], cfg.grace);
  const watched = watchedAccounts(cfg);
  assert.equal(env[ENV.accounts], Object.entries(watched).map(([a, n]) => `${a}=${n}`).join(','));
  assert.equal(env[ENV.trustedAccounts], Object.keys(watched).join(','));
  for (const a of [cfg.central.account, ...(cfg.managementAccount === undefined ? [] : [cfg.managementAccount]), ...Object.keys(cfg.accounts)]) {
    assert.ok(env[ENV.trustedAccounts].split(',').includes(a), `account ${a} is trusted`);
  }
  assert.equal(env[ENV.slackChannel], cfg.slack.defaultChannel);
  assert.equal(env[ENV.heartbeatSilence], cfg.heartbeat.silenceAfter);
  assert.deepEqual(
    env[ENV.deployment],
    { 'Fn::Join': ['', [`${account}/${region}/`, { Ref: id.table }]] },
    'the deployment id names the account, region and table',
  );
  assert.equal(env[ENV.quietAfter], cfg.heartbeat.quietAfter);
  for (const v of Object.values(env)) {
    assert.ok(typeof v !== 'string' || !/xox[abp]-|hooks\.slack\.com/.test(v), 'no Slack credential in the environment');
  }
  assert.ok(asList(fn.DependsOn).some((d: string) => d.startsWith('FunctionPolicy')), 'the function waits for its policy');

  trustsOnly(t, id.fnRole, 'lambda.amazonaws.com');
  const s = statementsOfRole(t, id.fnRole);
  const bedrockSids = parseModelId(cfg.bedrock.modelId).profile === undefined ? ['BedrockModel'] : ['BedrockInferenceProfile', 'BedrockModelThroughProfile'];
  assert.deepEqual(
    s.map((x) => x.Sid),
    ['Logs', 'Table', 'SlackSecret', 'OrganizationAccounts', ...bedrockSids],
  );
  assert.deepEqual(
    statement(s, 'OrganizationAccounts'),
    { Sid: 'OrganizationAccounts', Effect: 'Allow', Action: 'organizations:ListAccounts', Resource: '*' },
    'list the accounts, nothing else of Organizations',
  );
  assert.deepEqual(statement(s, 'Logs').Resource, partitionJoin(`:logs:${region}:${account}:log-group:/aws/lambda/${CENTRAL_NAMES.function}:log-stream:*`));
  assert.deepEqual(statement(s, 'Logs').Action, ['logs:CreateLogStream', 'logs:PutLogEvents']);
  assert.deepEqual(statement(s, 'Table').Action, [...TABLE_ACTIONS]);
  // Spelled out, not read back from the config: no delete, no batch write (audit items stay),
  // no transactions.
  assert.deepEqual(statement(s, 'Table').Action, [
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:Query',
    'dynamodb:UpdateItem',
  ]);
  assert.ok(!asList(statement(s, 'Table').Action).includes('dynamodb:Scan'), 'no Scan');
  assert.deepEqual(statement(s, 'Table').Resource, [getAtt(id.table), { 'Fn::Join': ['', [getAtt(id.table), `/index/${TABLE.dueIndex}`]] }]);
  assert.deepEqual(statement(s, 'SlackSecret'), { Sid: 'SlackSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: { Ref: id.secret } });
  checkBedrock(s, cfg);
}

/** Bedrock: InvokeModel on the configured model or profile, nothing wider. */
export function checkBedrock(s: Json[], cfg: TrailwatchConfig): void {
  const { region, account } = cfg.central;
  const model = parseModelId(cfg.bedrock.modelId);
  const bedrock = s.filter((x) => asList(x.Action).some((a: string) => a.startsWith('bedrock:')));
  assert.ok(bedrock.length > 0, 'the Lambda may call Bedrock');
  for (const b of bedrock) assert.deepEqual(asList(b.Action), ['bedrock:InvokeModel']);
  if (model.profile === undefined) {
    assert.deepEqual(bedrock.map((b) => b.Resource), [partitionJoin(`:bedrock:${region}::foundation-model/${model.model}`)]);
    return;
  }
  const profileArn = partitionJoin(`:bedrock:${region}:${account}:inference-profile/${cfg.bedrock.modelId}`);
  assert.deepEqual(statement(s, 'BedrockInferenceProfile').Resource, profileArn);
  const through = statement(s, 'BedrockModelThroughProfile');
  assert.deepEqual(through.Condition, { StringEquals: { 'bedrock:InferenceProfileArn': profileArn } }, 'the model only through the profile');
  const regions = model.profile === 'global' ? [region, ''] : [...new Set([region, ...cfg.bedrock.profileRegions])];
  assert.deepEqual(
    asList(through.Resource),
    regions.map((r) => partitionJoin(`:bedrock:${r}::foundation-model/${model.model}`)),
  );
}

/** No IAM policy grants `*` actions or `*` resources; the only wildcard is the log streams. */
/**
 * Actions that support no resource-level permission, so their statement's resource is "*"
 * (Service Authorization Reference): a statement of these alone may say "*".
 */
const NO_RESOURCE_LEVEL = ['organizations:ListAccounts'];

export function checkLeastPrivilege(t: Template): void {
  for (const [policyId, policy] of resourcesOfType(t, 'AWS::IAM::Policy')) {
    for (const s of policy.Properties.PolicyDocument.Statement as Json[]) {
      assert.equal(s.Effect, 'Allow');
      assert.equal(s.NotAction, undefined);
      assert.equal(s.NotResource, undefined);
      for (const a of asList(s.Action) as string[]) assert.ok(!a.includes('*'), `${policyId}: wildcard action ${a}`);
      if ((asList(s.Action) as string[]).every((a) => NO_RESOURCE_LEVEL.includes(a))) {
        assert.equal(s.Resource, '*', `${policyId}/${s.Sid}: an action without resource-level permissions`);
        continue;
      }
      for (const r of asList(s.Resource)) {
        assert.notEqual(r, '*', `${policyId}/${s.Sid}: Resource "*"`);
        const text = JSON.stringify(r);
        if (text.includes('*')) assert.ok(text.endsWith(':log-stream:*"]]}'), `${policyId}/${s.Sid}: wildcard resource ${text}`);
      }
    }
  }
  for (const [roleId, role] of resourcesOfType(t, 'AWS::IAM::Role')) {
    assert.equal(role.Properties.ManagedPolicyArns, undefined, `${roleId}: no managed policies`);
  }
}


/** Key use by a principal, through exactly these services. */
interface KeyUser {
  readonly principal: Json | Json[] | string | string[];
  readonly actions: string[];
  readonly services: string[];
}

/**
 * The key policy separates administration from use: administrators get only administrative
 * actions, every user is named with only its actions and only through its services, and no IAM
 * policy carries a kms: statement (the key would ignore it).
 */
export function checkKey(t: Template, cfg: TrailwatchConfig): void {
  const id = ids(t);
  const { account, region } = cfg.central;
  const [keyId, key] = only(t, 'AWS::KMS::Key');
  assert.equal(key.Properties.EnableKeyRotation, true);
  assert.equal(key.DeletionPolicy, 'Retain');
  const statements = key.Properties.KeyPolicy.Statement as Json[];
  const root = partitionJoin(`:iam::${account}:root`);
  const deployer = partitionJoin(`:iam::${account}:role/cdk-hnb659fds-cfn-exec-role-${account}-${region}`);
  const crypto = /^kms:(\*|Encrypt|Decrypt|ReEncrypt|GenerateDataKey|CreateGrant|Create\*)/;

  const admin = statement(statements, 'KeyAdministration');
  assert.deepEqual(admin.Principal, {
    AWS: cfg.kmsAdminPrincipalArn === undefined ? root : [cfg.kmsAdminPrincipalArn, deployer],
  });
  assert.deepEqual(asList(admin.Action), [...KEY_ADMIN_ACTIONS]);
  for (const a of asList(admin.Action) as string[]) assert.ok(!crypto.test(a), `the administrators may not ${a}`);
  assert.equal(admin.Condition, undefined);

  for (const s of statements) {
    assert.equal(s.Effect, 'Allow');
    for (const a of asList(s.Action) as string[]) assert.notEqual(a, 'kms:*', `${s.Sid}: kms:*`);
    if (JSON.stringify(s.Principal) === JSON.stringify({ AWS: root })) assert.equal(s.Sid, 'KeyAdministration', `${s.Sid}: the account root only administers`);
    if (s.Principal.AWS !== undefined && s.Sid !== 'KeyAdministration') {
      assert.ok(s.Condition?.StringEquals?.['kms:ViaService'], `${s.Sid}: use only through a service`);
    }
  }

  const via = (...services: string[]) => services.map((x) => `${x}.${region}.amazonaws.com`);
  const users: Record<string, KeyUser> = {
    DeploymentThroughTableAndSecret: { principal: deployer, actions: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'], services: ['dynamodb', 'secretsmanager'] },
    DeploymentGrantsForTableAndSecret: { principal: deployer, actions: ['kms:CreateGrant'], services: ['dynamodb', 'secretsmanager'] },
    OperatorsThroughServices: {
      principal: cfg.kmsUserPrincipalArns.length === 1 ? cfg.kmsUserPrincipalArns[0] : [...cfg.kmsUserPrincipalArns],
      actions: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'],
      services: ['dynamodb', 'secretsmanager', 'sqs', 'kinesis'],
    },
    RulesWriteTheStream: { principal: getAtt(id.busRole), actions: ['kms:GenerateDataKey'], services: ['kinesis'] },
    FunctionThroughTableAndSecret: { principal: getAtt(id.fnRole), actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'], services: ['dynamodb', 'secretsmanager'] },
    PipeReadsStreamWritesDlq: { principal: getAtt(id.pipeRole), actions: ['kms:Decrypt', 'kms:GenerateDataKey'], services: ['kinesis', 'sqs'] },
  };
  for (const [sid, user] of Object.entries(users)) {
    const s = statement(statements, sid);
    assert.deepEqual(s.Principal, { AWS: user.principal }, `${sid}: principal`);
    assert.deepEqual(asList(s.Action), user.actions, `${sid}: actions`);
    assert.deepEqual(asList(s.Condition.StringEquals['kms:ViaService']), via(...user.services), `${sid}: services`);
  }
  assert.deepEqual(statement(statements, 'DeploymentGrantsForTableAndSecret').Condition.Bool, { 'kms:GrantIsForAWSResource': 'true' });

  const services = statements.filter((s) => s.Principal.Service);
  assert.deepEqual(
    services.map((s) => s.Sid).sort(),
    ['CloudWatchAlarmsIntoTheTopic', 'CloudWatchLogsForTheLambdaLogGroup', 'EventBridgeArchiveDescribeKey', 'EventBridgeArchiveOfTheBus', 'EventBridgeIntoTheBusDlq'],
  );
  const bySid = Object.fromEntries(services.map((s) => [s.Sid, s]));
  assert.deepEqual(bySid.EventBridgeIntoTheBusDlq.Condition, {
    ArnEquals: { 'aws:SourceArn': [centralRuleArn(cfg, CENTRAL_NAMES.busRule), centralRuleArn(cfg, CENTRAL_NAMES.heartbeatRule)] },
  });
  assert.deepEqual(bySid.CloudWatchLogsForTheLambdaLogGroup.Condition, {
    ArnEquals: { 'kms:EncryptionContext:aws:logs:arn': partitionJoin(`:logs:${region}:${account}:log-group:/aws/lambda/${CENTRAL_NAMES.function}`) },
  });
  assert.deepEqual(bySid.EventBridgeArchiveOfTheBus.Condition, {
    StringEquals: { 'kms:EncryptionContext:aws:events:event-bus:arn': getAtt(id.bus) },
  });
  assert.deepEqual(asList(bySid.EventBridgeArchiveDescribeKey.Action), ['kms:DescribeKey']);
  assert.equal(bySid.CloudWatchAlarmsIntoTheTopic.Condition, undefined, 'as the CloudWatch guide writes it');
  assert.equal(statements.length, Object.keys(users).length + services.length + 1, 'no other statement');

  for (const [policyId, policy] of resourcesOfType(t, 'AWS::IAM::Policy')) {
    for (const s of policy.Properties.PolicyDocument.Statement as Json[]) {
      for (const a of asList(s.Action) as string[]) assert.ok(!a.startsWith('kms:'), `${policyId}/${s.Sid}: ${a} in an IAM policy would be ignored; the key policy grants use`);
    }
  }
  assert.ok(keyId);
}

/** The archive keeps what the central rules accept, under the key, for the configured days. */
export function checkArchive(t: Template, cfg: TrailwatchConfig): void {
  const id = ids(t);
  const res = t.toJSON().Resources;
  const [, archive] = only(t, 'AWS::Events::Archive');
  const p = archive.Properties;
  assert.equal(p.ArchiveName, CENTRAL_NAMES.archive);
  assert.deepEqual(p.SourceArn, getAtt(id.bus));
  assert.equal(p.RetentionDays, cfg.archiveRetentionDays);
  assert.ok(p.RetentionDays >= 14, 'outlives the dead-letter queues');
  assert.deepEqual(p.KmsKeyIdentifier, getAtt(id.key));
  assert.deepEqual(p.EventPattern, { $or: [res[id.busRule].Properties.EventPattern, res[id.heartbeatRule].Properties.EventPattern] }, 'what the central rules accept');
}

/** Bus (policy), the two rules -> Kinesis (partition key, role, DLQ, retries), stream (on-demand, KMS). */
export function checkBusAndStream(t: Template, cfg: TrailwatchConfig, patterns: Json[]): void {
  const id = ids(t);
  const res = t.toJSON().Resources;
  assert.equal(res[id.bus].Properties.Name, CENTRAL_NAMES.bus);
  const [, busPolicy] = only(t, 'AWS::Events::EventBusPolicy');
  assert.deepEqual(busPolicy.Properties.EventBusName, { Ref: id.bus });
  const st = busPolicy.Properties.Statement;
  assert.equal(st.Action, 'events:PutEvents');
  assert.deepEqual(st.Resource, getAtt(id.bus));
  if (cfg.organizationId !== undefined) {
    assert.deepEqual(st.Principal, { AWS: '*' });
    assert.deepEqual(st.Condition, { StringEquals: { 'aws:PrincipalOrgID': cfg.organizationId } });
  } else {
    assert.equal(st.Condition, undefined);
    const principals = asList(st.Principal.AWS).map((p: Json) => JSON.stringify(p));
    const senders = Object.keys(watchedAccounts(cfg));
    assert.equal(principals.length, senders.length);
    for (const account of senders) {
      assert.ok(principals.some((p: string) => p.includes(`:iam::${account}:root`)), `account ${account} may put events`);
    }
  }

  const stream = res[id.stream].Properties;
  assert.deepEqual(stream.StreamModeDetails, { StreamMode: 'ON_DEMAND' });
  assert.deepEqual(stream.StreamEncryption, { EncryptionType: 'KMS', KeyId: getAtt(id.key) });

  const rules = resourcesOfType(t, 'AWS::Events::Rule');
  assert.equal(rules.length, 2);
  const busRule = res[id.busRule].Properties;
  const heartbeatRule = res[id.heartbeatRule].Properties;
  assert.equal(busRule.Name, CENTRAL_NAMES.busRule, 'the name the key policy and the alarms use');
  assert.equal(heartbeatRule.Name, CENTRAL_NAMES.heartbeatRule);
  // Exactly the detail-types the member rules can forward, from AWS sources: no aws.partner/*
  // or other event types, and no heartbeat twice.
  assert.deepEqual(busRule.EventPattern, { source: [{ prefix: 'aws.' }], 'detail-type': detailTypesOf(patterns) });
  assert.ok(!busRule.EventPattern['detail-type'].includes('Scheduled Event'));
  assert.deepEqual(heartbeatRule.EventPattern, {
    source: ['aws.events'],
    'detail-type': ['Scheduled Event'],
    resources: [{ wildcard: 'arn:*:events:*:*:rule/trailwatch-heartbeat' }],
  });
  for (const rule of [busRule, heartbeatRule]) {
    assert.deepEqual(rule.EventBusName, { Ref: id.bus });
    assert.equal(rule.State, 'ENABLED');
    assert.equal(rule.Targets.length, 1);
    const target = rule.Targets[0];
    assert.deepEqual(target.Arn, getAtt(id.stream));
    assert.deepEqual(target.KinesisParameters, { PartitionKeyPath: '$.account' });
    assert.deepEqual(target.RoleArn, getAtt(id.busRole));
    assert.deepEqual(target.DeadLetterConfig, { Arn: getAtt(id.busDlq) }, 'undeliverable events go to the bus DLQ');
    assert.deepEqual(target.RetryPolicy, { MaximumEventAgeInSeconds: 900, MaximumRetryAttempts: 185 });
    assert.ok(target.RetryPolicy.MaximumEventAgeInSeconds <= 3600, 'the DLQ sees a failure within the hour, not after 24');
  }

  trustsOnly(t, id.busRole, 'events.amazonaws.com', sourceCondition(cfg, [centralRuleArn(cfg, CENTRAL_NAMES.busRule), centralRuleArn(cfg, CENTRAL_NAMES.heartbeatRule)]));
  const s = statementsOfRole(t, id.busRole);
  assert.deepEqual(s.map((x) => x.Sid), ['PutRecords']);
  assert.deepEqual(statement(s, 'PutRecords').Action, ['kinesis:PutRecord', 'kinesis:PutRecords']);
  assert.deepEqual(statement(s, 'PutRecords').Resource, getAtt(id.stream));

  const busDlqPolicy = resourcesOfType(t, 'AWS::SQS::QueuePolicy').find(([, q]) => q.Properties.Queues[0].Ref === id.busDlq);
  assert.ok(busDlqPolicy, 'the bus DLQ has a queue policy');
  const allow = (busDlqPolicy[1].Properties.PolicyDocument.Statement as Json[]).filter((x) => x.Effect === 'Allow');
  assert.equal(allow.length, 1);
  assert.deepEqual(allow[0].Principal, { Service: 'events.amazonaws.com' });
  assert.equal(allow[0].Action, 'sqs:SendMessage');
  assert.deepEqual(allow[0].Condition, { ArnEquals: { 'aws:SourceArn': [getAtt(id.busRule), getAtt(id.heartbeatRule)] } }, 'only from the central rules');
}

/** One table: keys, sparse due index, on-demand, PITR, TTL, KMS. */
export function checkTable(t: Template): void {
  const id = ids(t);
  const p = t.toJSON().Resources[id.table].Properties;
  assert.deepEqual(p.KeySchema, [
    { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
    { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
  ]);
  assert.deepEqual(p.GlobalSecondaryIndexes, [
    {
      IndexName: TABLE.dueIndex,
      KeySchema: [
        { AttributeName: TABLE.dueIndexPartitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE.dueIndexSortKey, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...TABLE.dueIndexAttributes] },
    },
  ]);
  for (const name of [TABLE.partitionKey, TABLE.sortKey, TABLE.dueIndexPartitionKey]) {
    assert.ok(p.AttributeDefinitions.some((a: Json) => a.AttributeName === name && a.AttributeType === 'S'), `${name} is a string`);
  }
  assert.ok(
    p.AttributeDefinitions.some((a: Json) => a.AttributeName === TABLE.dueIndexSortKey && a.AttributeType === 'N'),
    `${TABLE.dueIndexSortKey} is a number (epoch ms)`,
  );

  assert.equal(p.BillingMode, 'PAY_PER_REQUEST');
  assert.deepEqual(p.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
  assert.deepEqual(p.TimeToLiveSpecification, { AttributeName: TABLE.ttlAttribute, Enabled: true });
  assert.deepEqual(p.SSESpecification, { KMSMasterKeyId: getAtt(id.key), SSEEnabled: true, SSEType: 'KMS' });
  assert.equal(p.DeletionProtectionEnabled, true);
}

/** The minute tick: the right payload, a role that may invoke this function only. */
export function checkTick(t: Template, cfg: TrailwatchConfig): void {
  const id = ids(t);
  const [, schedule] = only(t, 'AWS::Scheduler::Schedule');
  const p = schedule.Properties;
  assert.equal(p.ScheduleExpression, 'rate(1 minute)');
  assert.equal(p.State, 'ENABLED');
  assert.equal(p.GroupName, undefined, 'the default group, which the role trust names');
  assert.deepEqual(p.FlexibleTimeWindow, { Mode: 'OFF' });
  assert.deepEqual(p.Target.Arn, getAtt(id.fn));
  assert.deepEqual(p.Target.RoleArn, getAtt(id.tickRole));
  assert.deepEqual(JSON.parse(p.Target.Input), TICK_INPUT);
  trustsOnly(t, id.tickRole, 'scheduler.amazonaws.com', sourceCondition(cfg, partitionJoin(`:scheduler:${cfg.central.region}:${cfg.central.account}:schedule-group/default`)));
  assert.deepEqual(statementsOfRole(t, id.tickRole), [
    { Sid: 'InvokeFunction', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: getAtt(id.fn) },
  ]);
}

/** One alarm as the README's alarm table states it. */
interface AlarmRow {
  readonly name: string;
  readonly namespace: string;
  readonly metric: string;
  readonly dimensions: Json[] | undefined;
  readonly statistic: string;
  readonly comparison: 'GreaterThanOrEqualToThreshold' | 'LessThanThreshold';
  readonly threshold: number;
  /** Longest time before it fires, in seconds (periods x period). */
  readonly within: number;
  readonly missing: 'breaching' | 'notBreaching';
}

/** Every alarm of the central stack, spelled out (README "Alarms" says the same). */
export function centralAlarmRows(t: Template, cfg: TrailwatchConfig): AlarmRow[] {
  const id = ids(t);
  const fn = [{ Name: 'FunctionName', Value: { Ref: id.fn } }];
  const queue = (q: string) => [{ Name: 'QueueName', Value: getAtt(q, 'QueueName') }];
  const rule = (r: string) => [{ Name: 'EventBusName', Value: CENTRAL_NAMES.bus }, { Name: 'RuleName', Value: r }];
  const pipe = [{ Name: 'PipeName', Value: CENTRAL_NAMES.pipe }];
  const count = (name: string, namespace: string, metric: string, dimensions: Json[] | undefined, statistic = 'Sum'): AlarmRow =>
    ({ name, namespace, metric, dimensions, statistic, comparison: 'GreaterThanOrEqualToThreshold', threshold: 1, within: 300, missing: 'notBreaching' });
  const stopped = (name: string, namespace: string, metric: string, dimensions: Json[], within: number): AlarmRow =>
    ({ name, namespace, metric, dimensions, statistic: 'Sum', comparison: 'LessThanThreshold', threshold: 1, within, missing: 'breaching' });
  return [
    { ...count('trailwatch-iterator-age', 'AWS/Kinesis', 'GetRecords.IteratorAgeMilliseconds', [{ Name: 'StreamName', Value: { Ref: id.stream } }], 'Maximum'), threshold: cfg.alarms.iteratorAgeSeconds * 1000 },
    count('trailwatch-pipe-dlq', 'AWS/SQS', 'ApproximateNumberOfMessagesVisible', queue(id.pipeDlq), 'Maximum'),
    count('trailwatch-bus-dlq', 'AWS/SQS', 'ApproximateNumberOfMessagesVisible', queue(id.busDlq), 'Maximum'),
    count('trailwatch-function-errors', 'AWS/Lambda', 'Errors', fn),
    count('trailwatch-throttles', 'AWS/Lambda', 'Throttles', fn),
    count('trailwatch-quarantined', METRICS.namespace, METRICS.quarantined, undefined),
    count('trailwatch-offline-fallback', METRICS.namespace, METRICS.offlineFallbacks, undefined),
    count('trailwatch-slack-failure', METRICS.namespace, METRICS.slackFailures, undefined),
    count('trailwatch-store-rejected', METRICS.namespace, METRICS.storeRejected, undefined),
    count('trailwatch-bus-rule-failed', 'AWS/Events', 'FailedInvocations', rule(CENTRAL_NAMES.busRule)),
    count('trailwatch-bus-rule-dlq-failed', 'AWS/Events', 'InvocationsFailedToBeSentToDlq', rule(CENTRAL_NAMES.busRule)),
    count('trailwatch-heartbeat-rule-failed', 'AWS/Events', 'FailedInvocations', rule(CENTRAL_NAMES.heartbeatRule)),
    count('trailwatch-heartbeat-rule-dlq-failed', 'AWS/Events', 'InvocationsFailedToBeSentToDlq', rule(CENTRAL_NAMES.heartbeatRule)),
    count('trailwatch-pipe-failures', 'AWS/EventBridge/Pipes', 'ExecutionFailed', pipe),
    stopped('trailwatch-silence', 'AWS/Lambda', 'Invocations', fn, 600),
    stopped('trailwatch-pipeline-stopped', 'AWS/Events', 'Invocations', rule(CENTRAL_NAMES.heartbeatRule), 900),
    stopped('trailwatch-pipe-stopped', 'AWS/EventBridge/Pipes', 'Invocations', pipe, 900),
    { ...count('trailwatch-silent-sources', METRICS.namespace, METRICS.silentSources, undefined, 'Maximum'), missing: 'breaching' },
  ];
}

function sortedDimensions(d: Json[] | undefined): Json[] | undefined {
  return d === undefined ? undefined : [...d].sort((a, b) => String(a.Name).localeCompare(String(b.Name)));
}

/** Each alarm exactly as its row says, notifying `topicId`; no alarm beyond the rows. */
export function checkAlarmRows(t: Template, rows: AlarmRow[], topicId: string): void {
  const alarms = resourcesOfType(t, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
  for (const row of rows) {
    const a = alarms.find((x) => x.AlarmName === row.name);
    assert.ok(a, `an alarm ${row.name}`);
    assert.equal(a.Namespace, row.namespace, `${row.name}: namespace`);
    assert.equal(a.MetricName, row.metric, `${row.name}: metric`);
    assert.deepEqual(sortedDimensions(a.Dimensions), sortedDimensions(row.dimensions), `${row.name}: dimensions`);
    assert.equal(a.Statistic, row.statistic, `${row.name}: statistic`);
    assert.equal(a.ComparisonOperator, row.comparison, `${row.name}: comparison`);
    assert.equal(a.Threshold, row.threshold, `${row.name}: threshold`);
    assert.ok(a.EvaluationPeriods * a.Period <= row.within, `${row.name}: fires within ${row.within} s`);
    assert.equal(a.TreatMissingData, row.missing, `${row.name}: missing data is ${row.missing}`);
    assert.deepEqual(a.AlarmActions, [{ Ref: topicId }], `${row.name} notifies the topic`);
    assert.deepEqual(a.OKActions, [{ Ref: topicId }], `${row.name} says when it recovers`);
  }
  assert.deepEqual(alarms.map((a) => a.AlarmName).sort(), rows.map((r) => r.name).sort(), 'no other alarm');
}

/** The topic policy lets this account's trailwatch alarms publish (and nothing else in). */
function checkTopicPolicy(t: Template, topicId: string, region: string | Json, account: string | Json): void {
  const policy = resourcesOfType(t, 'AWS::SNS::TopicPolicy').find(([, p]) => p.Properties.Topics[0].Ref === topicId);
  assert.ok(policy, 'the topic has a policy');
  const allow = (policy[1].Properties.PolicyDocument.Statement as Json[]).filter((s) => s.Effect === 'Allow');
  assert.equal(allow.length, 1);
  assert.deepEqual(allow[0].Principal, { Service: 'cloudwatch.amazonaws.com' });
  assert.equal(allow[0].Action, 'sns:Publish');
  const source = String(JSON.stringify(allow[0].Condition?.ArnLike?.['aws:SourceArn']));
  assert.ok(source.endsWith(':alarm:trailwatch-*"]]}'), `only trailwatch alarms: ${source}`);
  assert.ok(source.includes(JSON.stringify(region).replace(/^"|"$/g, '')) && source.includes(JSON.stringify(account).replace(/^"|"$/g, '')), 'of this account and region');
  assert.deepEqual(allow[0].Condition?.StringEquals, { 'aws:SourceAccount': account });
}

/** Every alarm the issue names, each notifying the encrypted SNS topic. */
export function checkAlarms(t: Template, cfg: TrailwatchConfig): void {
  const id = ids(t);
  checkAlarmRows(t, centralAlarmRows(t, cfg), id.topic);
  const [, topic] = only(t, 'AWS::SNS::Topic');
  assert.deepEqual(topic.Properties.KmsMasterKeyId, getAtt(id.key));
  checkTopicPolicy(t, id.topic, cfg.central.region, cfg.central.account);
  const emails = resourcesOfType(t, 'AWS::SNS::Subscription').map(([, s]) => s.Properties);
  assert.deepEqual(emails.map((s) => [s.Protocol, s.Endpoint]), cfg.alarms.emails.map((e) => ['email', e]), 'someone receives the alarms');
}

/** Where a member stack is: concrete for a CDK stack, pseudo parameters in the StackSet template. */
export interface MemberPlace {
  readonly account: string | Json;
  readonly region: string | Json;
}

/**
 * A member stack: one rule per pattern and the heartbeat on the default bus, each to the central
 * bus through the role, with a retry policy and the dead-letter queue; the queue's alarm.
 */
export function checkMember(t: Template, busArn: string, patterns: Json[], place: MemberPlace, opts: { schedule: string; emails: readonly string[] }): void {
  const res = t.toJSON().Resources;
  const rules = resourcesOfType(t, 'AWS::Events::Rule').map(([rid, r]) => [rid, r.Properties] as [string, Json]);
  assert.equal(rules.length, patterns.length + 1, 'one rule per pattern, and the heartbeat');
  const [roleId, role] = only(t, 'AWS::IAM::Role');
  const [dlqId, dlq] = only(t, 'AWS::SQS::Queue');
  const expectedTarget = {
    Id: 'CentralBus',
    Arn: busArn,
    RoleArn: getAtt(roleId),
    DeadLetterConfig: { Arn: getAtt(dlqId) },
    RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 185 },
  };
  const forward = rules.filter(([, r]) => r.ScheduleExpression === undefined);
  assert.equal(forward.length, patterns.length);
  forward.forEach(([, r], i) => {
    assert.equal(r.Name, `trailwatch-forward-${i + 1}`, 'a fixed name an SCP can protect');
    assert.equal(r.EventBusName, 'default');
    assert.equal(r.State, 'ENABLED');
    assert.deepEqual(r.EventPattern, patterns[i], `rule ${i + 1} has pattern ${i + 1} as generated`);
    assert.deepEqual(r.Targets, [expectedTarget]);
  });
  const heartbeats = rules.filter(([, r]) => r.ScheduleExpression !== undefined);
  assert.equal(heartbeats.length, 1, 'one heartbeat');
  const [heartbeatId, heartbeat] = heartbeats[0];
  assert.equal(heartbeat.Name, 'trailwatch-heartbeat', 'the name the central rule matches');
  assert.equal(heartbeat.ScheduleExpression, opts.schedule);
  assert.equal(heartbeat.EventPattern, undefined);
  assert.equal(heartbeat.State, 'ENABLED');
  assert.deepEqual(heartbeat.Targets, [expectedTarget]);
  assert.ok(heartbeatId);

  assert.ok(String(JSON.stringify(role.Properties.RoleName)).includes('trailwatch-forward-'), 'a fixed role name');
  const trust = role.Properties.AssumeRolePolicyDocument.Statement;
  assert.equal(trust.length, 1);
  assert.deepEqual(trust[0].Principal, { Service: 'events.amazonaws.com' });
  assert.deepEqual(trust[0].Condition?.StringEquals, { 'aws:SourceAccount': place.account });
  const sourceArn = String(JSON.stringify(trust[0].Condition?.ArnLike?.['aws:SourceArn']));
  assert.ok(sourceArn.endsWith(':rule/trailwatch-*"]]}'), `only trailwatch rules may use the role: ${sourceArn}`);
  assert.equal(Object.keys(trust[0].Condition).length, 2);
  assert.deepEqual(statementsOfRole(t, roleId), [
    { Sid: 'PutEventsOnCentralBus', Effect: 'Allow', Action: 'events:PutEvents', Resource: busArn },
  ]);

  assert.equal(dlq.Properties.QueueName, 'trailwatch-forward-dlq');
  assert.equal(dlq.Properties.SqsManagedSseEnabled, true, 'encrypted');
  assert.equal(dlq.Properties.MessageRetentionPeriod, 14 * 24 * 3600);
  const [, queuePolicy] = only(t, 'AWS::SQS::QueuePolicy');
  const statements = queuePolicy.Properties.PolicyDocument.Statement as Json[];
  assert.ok(statements.some((s) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false'), 'TLS only');
  const allow = statements.filter((s) => s.Effect === 'Allow');
  assert.equal(allow.length, 1);
  assert.deepEqual(allow[0].Principal, { Service: 'events.amazonaws.com' });
  assert.equal(allow[0].Action, 'sqs:SendMessage');
  // The same rules, in any order (ten or more patterns sort Forward10 before Forward2).
  const byText = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));
  assert.deepEqual(Object.keys(allow[0].Condition ?? {}), ['ArnEquals']);
  assert.deepEqual(
    [...(allow[0].Condition.ArnEquals['aws:SourceArn'] as unknown[])].sort(byText),
    rules.map(([rid]) => getAtt(rid)).sort(byText),
    'only this stack\'s rules may dead-letter into it',
  );

  const [topicId, topic] = only(t, 'AWS::SNS::Topic');
  assert.equal(topic.Properties.TopicName, 'trailwatch-member-alarms');
  checkTopicPolicy(t, topicId, place.region, place.account);
  const emails = resourcesOfType(t, 'AWS::SNS::Subscription').map(([, s]) => s.Properties);
  assert.deepEqual(emails.map((s) => [s.Protocol, s.Endpoint, s.TopicArn]), opts.emails.map((e) => ['email', e, { Ref: topicId }]));
  checkAlarmRows(
    t,
    [
      {
        name: 'trailwatch-forward-dlq',
        namespace: 'AWS/SQS',
        metric: 'ApproximateNumberOfMessagesVisible',
        dimensions: [{ Name: 'QueueName', Value: getAtt(dlqId, 'QueueName') }],
        statistic: 'Maximum',
        comparison: 'GreaterThanOrEqualToThreshold',
        threshold: 1,
        within: 300,
        missing: 'notBreaching',
      },
    ],
    topicId,
  );
  assert.ok(res[dlqId]);
}
