// What the central and member templates must say, as functions over a template so that the
// mutation tests can show each check fails when a DLQ, a permission or an alarm goes missing.

import assert from 'node:assert/strict';

import { Template } from 'aws-cdk-lib/assertions';

import { ENV, METRICS, TABLE, TABLE_ACTIONS, TICK_INPUT, TrailwatchConfig, parseModelId } from '../config';
import { CENTRAL_BUS_NAME, FUNCTION_NAME } from '../lib/central-stack';
import { asList, getAtt, logicalIdByPath, only, resourcesOfType, statement, statementsOfRole } from './helpers';

type Json = Record<string, any>;

const partitionJoin = (rest: string): Json => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, rest]] });

function ids(t: Template) {
  return {
    key: logicalIdByPath(t, '/Key/Resource'),
    stream: logicalIdByPath(t, '/Stream/Resource'),
    bus: logicalIdByPath(t, '/Bus/Resource'),
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

function trustsOnly(t: Template, roleId: string, service: string, account: string): void {
  const role = t.toJSON().Resources[roleId];
  assert.deepEqual(role.Properties.AssumeRolePolicyDocument.Statement, [
    {
      Action: 'sts:AssumeRole',
      Effect: 'Allow',
      Principal: { Service: service },
      ...(service === 'lambda.amazonaws.com' ? {} : { Condition: { StringEquals: { 'aws:SourceAccount': account } } }),
    },
  ]);
  assert.equal(role.Properties.ManagedPolicyArns, undefined, `${roleId} has no managed policies`);
  assert.equal(role.Properties.Policies, undefined, `${roleId} has no other inline policies`);
}

/** Kinesis -> Pipe -> Lambda with bisect, bounded retries, a bounded record age and an SQS DLQ. */
export function checkPipe(t: Template, cfg: TrailwatchConfig): void {
  const id = ids(t);
  const [, pipe] = only(t, 'AWS::Pipes::Pipe');
  const p = pipe.Properties;
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

  trustsOnly(t, id.pipeRole, 'pipes.amazonaws.com', cfg.central.account);
  const s = statementsOfRole(t, id.pipeRole);
  assert.deepEqual(
    s.map((x) => x.Sid),
    ['ReadStream', 'InvokeFunction', 'DeadLetter', 'KeyForStreamAndDlq'],
  );
  assert.deepEqual(statement(s, 'ReadStream').Resource, getAtt(id.stream));
  assert.ok(asList(statement(s, 'ReadStream').Action).includes('kinesis:GetRecords'));
  assert.ok(asList(statement(s, 'ReadStream').Action).every((a: string) => /^kinesis:(Describe|Get|List|Subscribe)/.test(a)), 'read only');
  assert.deepEqual(statement(s, 'InvokeFunction'), { Sid: 'InvokeFunction', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: getAtt(id.fn) });
  assert.deepEqual(statement(s, 'DeadLetter'), { Sid: 'DeadLetter', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: getAtt(id.pipeDlq) });
  const kmsStatement = statement(s, 'KeyForStreamAndDlq');
  assert.deepEqual(kmsStatement.Resource, getAtt(id.key));
  assert.deepEqual(kmsStatement.Condition, {
    StringEquals: { 'kms:ViaService': [`kinesis.${cfg.central.region}.amazonaws.com`, `sqs.${cfg.central.region}.amazonaws.com`] },
  });

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
  assert.equal(p.FunctionName, FUNCTION_NAME);
  assert.equal(p.Runtime, 'provided.al2023');
  assert.deepEqual(p.Architectures, ['arm64']);
  assert.equal(p.Handler, 'bootstrap');
  assert.equal(p.MemorySize, cfg.lambda.memoryMb);
  assert.equal(p.Timeout, cfg.lambda.timeoutSeconds);
  assert.deepEqual(p.Role, getAtt(id.fnRole));
  assert.deepEqual(p.LoggingConfig, { LogFormat: 'JSON', LogGroup: { Ref: id.logs } });
  const env = p.Environment.Variables;
  assert.deepEqual(Object.keys(env).sort(), Object.values(ENV).sort(), 'every variable the Lambda reads, nothing else');
  assert.deepEqual(env[ENV.table], { Ref: id.table });
  assert.deepEqual(env[ENV.slackSecretArn], { Ref: id.secret });
  assert.equal(env[ENV.modelId], cfg.bedrock.modelId);
  assert.equal(env[ENV.summarizer], 'bedrock');
  assert.equal(env[ENV.lang], cfg.lang);
  assert.equal(env[ENV.tz], cfg.timeZone);
  assert.equal(env[ENV.window], cfg.window);
  assert.equal(env[ENV.grace], cfg.grace);
  assert.equal(env[ENV.accounts], Object.entries(cfg.accounts).map(([a, n]) => `${a}=${n}`).join(','));
  assert.equal(env[ENV.trustedAccounts], Object.keys(cfg.accounts).join(','));
  assert.equal(env[ENV.slackChannel], cfg.slack.defaultChannel);
  for (const v of Object.values(env)) {
    assert.ok(typeof v !== 'string' || !/xox[abp]-|hooks\.slack\.com/.test(v), 'no Slack credential in the environment');
  }
  assert.ok(asList(fn.DependsOn).some((d: string) => d.startsWith('FunctionPolicy')), 'the function waits for its policy');

  trustsOnly(t, id.fnRole, 'lambda.amazonaws.com', account);
  const s = statementsOfRole(t, id.fnRole);
  const bedrockSids = parseModelId(cfg.bedrock.modelId).profile === undefined ? ['BedrockModel'] : ['BedrockInferenceProfile', 'BedrockModelThroughProfile'];
  assert.deepEqual(
    s.map((x) => x.Sid),
    ['Logs', 'Table', 'SlackSecret', 'KeyForTableAndSecret', ...bedrockSids],
  );
  assert.deepEqual(statement(s, 'Logs').Resource, partitionJoin(`:logs:${region}:${account}:log-group:/aws/lambda/${FUNCTION_NAME}:log-stream:*`));
  assert.deepEqual(statement(s, 'Logs').Action, ['logs:CreateLogStream', 'logs:PutLogEvents']);
  assert.deepEqual(statement(s, 'Table').Action, [...TABLE_ACTIONS]);
  // Spelled out, not read back from the config: no delete, no batch write (audit items stay).
  assert.deepEqual(statement(s, 'Table').Action, [
    'dynamodb:ConditionCheckItem',
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:Query',
    'dynamodb:UpdateItem',
  ]);
  assert.ok(!asList(statement(s, 'Table').Action).includes('dynamodb:Scan'), 'no Scan');
  assert.deepEqual(statement(s, 'Table').Resource, [getAtt(id.table), { 'Fn::Join': ['', [getAtt(id.table), `/index/${TABLE.dueIndex}`]] }]);
  assert.deepEqual(statement(s, 'SlackSecret'), { Sid: 'SlackSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: { Ref: id.secret } });
  assert.deepEqual(statement(s, 'KeyForTableAndSecret').Action, ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey']);
  assert.deepEqual(statement(s, 'KeyForTableAndSecret').Resource, getAtt(id.key));
  assert.deepEqual(statement(s, 'KeyForTableAndSecret').Condition, {
    StringEquals: { 'kms:ViaService': [`dynamodb.${region}.amazonaws.com`, `secretsmanager.${region}.amazonaws.com`] },
  });
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
export function checkLeastPrivilege(t: Template): void {
  for (const [policyId, policy] of resourcesOfType(t, 'AWS::IAM::Policy')) {
    for (const s of policy.Properties.PolicyDocument.Statement as Json[]) {
      assert.equal(s.Effect, 'Allow');
      assert.equal(s.NotAction, undefined);
      assert.equal(s.NotResource, undefined);
      for (const a of asList(s.Action) as string[]) assert.ok(!a.includes('*'), `${policyId}: wildcard action ${a}`);
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

/** Bus (policy), rule -> Kinesis (partition key, role, DLQ), stream (on-demand, KMS). */
export function checkBusAndStream(t: Template, cfg: TrailwatchConfig): void {
  const id = ids(t);
  const res = t.toJSON().Resources;
  assert.equal(res[id.bus].Properties.Name, CENTRAL_BUS_NAME);
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
    assert.equal(principals.length, Object.keys(cfg.accounts).length);
    for (const account of Object.keys(cfg.accounts)) {
      assert.ok(principals.some((p: string) => p.includes(`:iam::${account}:root`)), `account ${account} may put events`);
    }
  }

  const stream = res[id.stream].Properties;
  assert.deepEqual(stream.StreamModeDetails, { StreamMode: 'ON_DEMAND' });
  assert.deepEqual(stream.StreamEncryption, { EncryptionType: 'KMS', KeyId: getAtt(id.key) });

  const rules = resourcesOfType(t, 'AWS::Events::Rule');
  assert.equal(rules.length, 1);
  const rule = rules[0][1].Properties;
  assert.deepEqual(rule.EventBusName, { Ref: id.bus });
  assert.deepEqual(rule.EventPattern, { source: [{ prefix: 'aws.' }] });
  assert.equal(rule.Targets.length, 1);
  const target = rule.Targets[0];
  assert.deepEqual(target.Arn, getAtt(id.stream));
  assert.deepEqual(target.KinesisParameters, { PartitionKeyPath: '$.account' });
  assert.deepEqual(target.RoleArn, getAtt(id.busRole));
  assert.deepEqual(target.DeadLetterConfig, { Arn: getAtt(id.busDlq) }, 'undeliverable events go to the bus DLQ');

  trustsOnly(t, id.busRole, 'events.amazonaws.com', cfg.central.account);
  const s = statementsOfRole(t, id.busRole);
  assert.deepEqual(s.map((x) => x.Sid), ['PutRecords', 'EncryptRecords']);
  assert.deepEqual(statement(s, 'PutRecords').Action, ['kinesis:PutRecord', 'kinesis:PutRecords']);
  assert.deepEqual(statement(s, 'PutRecords').Resource, getAtt(id.stream));
  assert.deepEqual(statement(s, 'EncryptRecords').Resource, getAtt(id.key));

  const busDlqPolicy = resourcesOfType(t, 'AWS::SQS::QueuePolicy').find(([, q]) => q.Properties.Queues[0].Ref === id.busDlq);
  assert.ok(busDlqPolicy, 'the bus DLQ has a queue policy');
  const allow = (busDlqPolicy[1].Properties.PolicyDocument.Statement as Json[]).find((x) => x.Effect === 'Allow');
  assert.ok(allow, 'EventBridge may send dead letters');
  assert.deepEqual(allow.Principal, { Service: 'events.amazonaws.com' });
  assert.equal(allow.Action, 'sqs:SendMessage');
  assert.ok(allow.Condition?.ArnEquals?.['aws:SourceArn'], 'only from the bus rule');
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
      Projection: { ProjectionType: 'ALL' },
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
  assert.deepEqual(p.FlexibleTimeWindow, { Mode: 'OFF' });
  assert.deepEqual(p.Target.Arn, getAtt(id.fn));
  assert.deepEqual(p.Target.RoleArn, getAtt(id.tickRole));
  assert.deepEqual(JSON.parse(p.Target.Input), TICK_INPUT);
  trustsOnly(t, id.tickRole, 'scheduler.amazonaws.com', cfg.central.account);
  assert.deepEqual(statementsOfRole(t, id.tickRole), [
    { Sid: 'InvokeFunction', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: getAtt(id.fn) },
  ]);
}

/** Every alarm the issue names, each notifying the SNS topic. */
export function checkAlarms(t: Template): void {
  const id = ids(t);
  const alarms = resourcesOfType(t, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
  const find = (namespace: string, metric: string) => {
    const a = alarms.find((x) => x.Namespace === namespace && x.MetricName === metric);
    assert.ok(a, `an alarm on ${namespace} ${metric}`);
    return a;
  };
  const iterator = find('AWS/Kinesis', 'GetRecords.IteratorAgeMilliseconds');
  assert.deepEqual(iterator.Dimensions, [{ Name: 'StreamName', Value: { Ref: id.stream } }]);
  assert.equal(iterator.Statistic, 'Maximum');
  const dlqs = alarms.filter((x) => x.Namespace === 'AWS/SQS' && x.MetricName === 'ApproximateNumberOfMessagesVisible');
  assert.deepEqual(
    dlqs.map((d) => JSON.stringify(d.Dimensions[0].Value)).sort(),
    [id.pipeDlq, id.busDlq].map((q) => JSON.stringify(getAtt(q, 'QueueName'))).sort(),
    'both DLQs are alarmed',
  );
  assert.deepEqual(find('AWS/Lambda', 'Errors').Dimensions, [{ Name: 'FunctionName', Value: { Ref: id.fn } }]);
  for (const m of [METRICS.quarantined, METRICS.offlineFallbacks, METRICS.slackFailures]) {
    const a = find(METRICS.namespace, m);
    assert.equal(a.Dimensions, undefined, `${m} has no dimensions (the Lambda emits none)`);
    assert.equal(a.Statistic, 'Sum');
  }
  assert.deepEqual(find('AWS/Lambda', 'Throttles').Dimensions, [{ Name: 'FunctionName', Value: { Ref: id.fn } }]);
  // Silence: fewer than one invocation in two 5-minute periods, and no data at all, alarm.
  const silence = find('AWS/Lambda', 'Invocations');
  assert.deepEqual(silence.Dimensions, [{ Name: 'FunctionName', Value: { Ref: id.fn } }]);
  assert.equal(silence.ComparisonOperator, 'LessThanThreshold');
  assert.equal(silence.TreatMissingData, 'breaching');
  assert.equal(silence.EvaluationPeriods * silence.Period <= 600, true, 'alarms within 10 minutes');
  assert.equal(alarms.length, 9);
  for (const a of alarms) {
    assert.deepEqual(a.AlarmActions, [{ Ref: id.topic }], `${a.AlarmName} notifies the topic`);
    assert.equal(a.Threshold > 0, true);
    if (a !== silence) {
      assert.equal(a.TreatMissingData, 'notBreaching', `${a.AlarmName}: a count with no data is no event`);
    }
  }
  const [, topic] = only(t, 'AWS::SNS::Topic');
  assert.deepEqual(topic.Properties.KmsMasterKeyId, getAtt(id.key));
}

/** A member stack: one rule per pattern on the default bus, each to the central bus via the role. */
export function checkMember(t: Template, busArn: string, patterns: Json[], account: string): void {
  const rules = resourcesOfType(t, 'AWS::Events::Rule').map(([, r]) => r.Properties);
  assert.equal(rules.length, patterns.length, 'one rule per pattern');
  const [roleId] = only(t, 'AWS::IAM::Role');
  rules.forEach((r, i) => {
    assert.equal(r.EventBusName, 'default');
    assert.equal(r.State, 'ENABLED');
    assert.deepEqual(r.EventPattern, patterns[i], `rule ${i + 1} has pattern ${i + 1} as generated`);
    assert.deepEqual(r.Targets, [{ Id: 'CentralBus', Arn: busArn, RoleArn: getAtt(roleId) }]);
  });
  trustsOnly(t, roleId, 'events.amazonaws.com', account);
  assert.deepEqual(statementsOfRole(t, roleId), [
    { Sid: 'PutEventsOnCentralBus', Effect: 'Allow', Action: 'events:PutEvents', Resource: busArn },
  ]);
}
