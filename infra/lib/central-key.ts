// The central KMS key's policy: administration apart from use. The administrators (the account,
// or a configured principal) may manage the key but not encrypt or decrypt with it; every role
// and service that uses it is named, with only the actions it needs and only through the
// services that hold trailwatch's data.
//
// Because the account is not trusted for use, an IAM policy cannot grant use of this key
// ("Unless the key policy explicitly allows it, you cannot use IAM policies to allow access to a
// KMS key": https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html).
// That is why no role carries a kms: statement of its own, and why a CDK grant on this key
// would do nothing: use is granted here or nowhere.

import * as cdk from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';

/**
 * Administration only, as AWS lists it for key administrators, without `kms:Create*` (which
 * would include CreateGrant, a way to use the key): no Encrypt, Decrypt, ReEncrypt*,
 * GenerateDataKey*. `kms:PutKeyPolicy` remains, as it must; giving oneself use therefore takes a
 * key policy change, which CloudTrail records (and trailwatch's rule pack can flag).
 */
export const KEY_ADMIN_ACTIONS = [
  'kms:CancelKeyDeletion',
  'kms:CreateAlias',
  'kms:Delete*',
  'kms:Describe*',
  'kms:Disable*',
  'kms:Enable*',
  'kms:Get*',
  'kms:List*',
  'kms:Put*',
  'kms:RevokeGrant',
  'kms:RotateKeyOnDemand',
  'kms:ScheduleKeyDeletion',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:Update*',
] as const;

/** KMS use only through these services, in this region. */
export function viaServices(region: string, ...services: string[]): string[] {
  return services.map((s) => `${s}.${region}.amazonaws.com`);
}

/** The role CloudFormation deploys the stack with (the CDK bootstrap's execution role). */
export function cloudFormationExecutionRoleArn(stack: cdk.Stack): string {
  const synth = stack.synthesizer;
  if (!(synth instanceof cdk.DefaultStackSynthesizer)) {
    throw new Error('the central stack needs the default CDK synthesizer: its key policy names the CloudFormation execution role');
  }
  // The synthesizer leaves CloudFormation placeholders (`${AWS::Partition}`) for the CLI; in a
  // template they must be the pseudo parameters.
  return synth.cloudFormationExecutionRoleArn
    .replace(/\$\{AWS::Partition\}/g, cdk.Aws.PARTITION)
    .replace(/\$\{AWS::AccountId\}/g, stack.account)
    .replace(/\$\{AWS::Region\}/g, stack.region);
}

/** A key with no statement yet; `addKeyAdministration` and `allowKeyUse` write its policy. */
export function newKey(stack: cdk.Stack, id: string): kms.Key {
  return new kms.Key(stack, id, {
    alias: 'alias/trailwatch',
    description: 'trailwatch: stream, queues, table, secret, topic, logs and archive',
    enableKeyRotation: true,
    removalPolicy: cdk.RemovalPolicy.RETAIN,
    // Our own document: CDK's default would give the account root kms:*.
    policy: new iam.PolicyDocument(),
  });
}

/**
 * The administrators: the account (IAM policies decide who) or the configured principal. With a
 * configured principal, CloudFormation's execution role is added: it creates and updates the key
 * policy, and KMS refuses a policy that locks its caller out.
 */
export function addKeyAdministration(key: kms.Key, adminPrincipalArn: string | undefined): void {
  const stack = cdk.Stack.of(key);
  const principals =
    adminPrincipalArn === undefined
      ? [new iam.AccountRootPrincipal()]
      : [new iam.ArnPrincipal(adminPrincipalArn), new iam.ArnPrincipal(cloudFormationExecutionRoleArn(stack))];
  key.addToResourcePolicy(
    new iam.PolicyStatement({ sid: 'KeyAdministration', principals, actions: [...KEY_ADMIN_ACTIONS], resources: ['*'] }),
  );
}

/** `principals` may use the key for `actions`, only through `services` of this region. */
export function allowKeyUse(key: kms.Key, sid: string, principals: iam.IPrincipal[], actions: string[], services: string[]): void {
  const { region } = cdk.Stack.of(key);
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid,
      principals,
      actions,
      resources: ['*'],
      conditions: { StringEquals: { 'kms:ViaService': viaServices(region, ...services) } },
    }),
  );
}

/**
 * CloudFormation's execution role creates the table and the secret under the key, and both
 * services call KMS with the creator's permissions. It gets what CDK's own Secret construct gives
 * the whole account through Secrets Manager (Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*,
 * DescribeKey and CreateGrant), here for this one role and through DynamoDB and Secrets Manager
 * only; grants only for AWS resources.
 */
export function allowDeployment(key: kms.Key): void {
  const stack = cdk.Stack.of(key);
  const deployer = new iam.ArnPrincipal(cloudFormationExecutionRoleArn(stack));
  const services = viaServices(stack.region, 'dynamodb', 'secretsmanager');
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'DeploymentThroughTableAndSecret',
      principals: [deployer],
      actions: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'],
      resources: ['*'],
      conditions: { StringEquals: { 'kms:ViaService': services } },
    }),
  );
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'DeploymentGrantsForTableAndSecret',
      principals: [deployer],
      actions: ['kms:CreateGrant'],
      resources: ['*'],
      conditions: { StringEquals: { 'kms:ViaService': services }, Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    }),
  );
}
