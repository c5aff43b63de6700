// Shared by the tests: configurations, an app built offline with the placeholder Lambda code and
// bundling skipped, and small readers over synthesized templates.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as cdk from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';

import { LAMBDA_PLACEHOLDER_DIR, TrailwatchConfig, config } from '../config';
import { TrailwatchApp, buildApp } from '../lib/app';

/** The checked-in configuration, as deployed. */
export const baseConfig: TrailwatchConfig = config;

/**
 * An account list instead of an organisation (the central account among them), a plain model
 * id, no StackSet, quiet accounts reported, no reserved concurrency.
 */
export const accountsConfig: TrailwatchConfig = {
  ...config,
  organizationId: undefined,
  stackSet: undefined,
  accounts: { '111111111111': 'prod', '333333333333': 'shared', '123456789012': 'security (named)' },
  memberRegions: ['eu-west-1'],
  bedrock: { modelId: 'anthropic.claude-3-5-sonnet-20240620-v1:0', profileRegions: [] },
  heartbeat: { intervalMinutes: 1, silenceAfter: '5m', quietAfter: '24h' },
  lambda: { ...config.lambda, reservedConcurrency: 'none' },
};

/** A configured key administrator and two key users, a delegated StackSet administrator. */
export const adminConfig: TrailwatchConfig = {
  ...config,
  stackSet: { ...config.stackSet!, callAs: 'DELEGATED_ADMIN' },
  kmsAdminPrincipalArn: 'arn:aws:iam::123456789012:role/key-admins',
  kmsUserPrincipalArns: ['arn:aws:iam::123456789012:role/trailwatch-operator', 'arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_SecOps_0123456789abcdef'],
};

/** A geographic inference profile. */
export const usProfileConfig: TrailwatchConfig = {
  ...config,
  bedrock: { modelId: 'us.anthropic.claude-sonnet-4-20250514-v1:0', profileRegions: ['us-east-1', 'us-east-2', 'us-west-2'] },
};

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A fresh app in a scratch directory, bundling skipped, as `cdk synth` would see it offline. */
export function newApp(): cdk.App {
  return new cdk.App({ outdir: tempDir('trailwatch-test-'), context: { 'aws:cdk:bundling-stacks': [], 'aws:cdk:enable-path-metadata': true } });
}

export function build(cfg: TrailwatchConfig = baseConfig): TrailwatchApp {
  return buildApp(cfg, { app: newApp(), codeDir: LAMBDA_PLACEHOLDER_DIR });
}

/** The central template of a built (not yet synthesized) app. */
export function centralTemplate(cfg: TrailwatchConfig = baseConfig): Template {
  return Template.fromStack(build(cfg).central);
}

type Json = Record<string, any>;

export function resourcesOfType(t: Template, type: string): [string, Json][] {
  return Object.entries(t.toJSON().Resources as Record<string, Json>).filter(([, r]) => r.Type === type);
}

/** The one resource of `type` (fails if there is not exactly one). */
export function only(t: Template, type: string): [string, Json] {
  const found = resourcesOfType(t, type);
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return found[0];
}

/** The logical id of the resource whose CDK path ends with `suffix`. */
export function logicalIdByPath(t: Template, suffix: string): string {
  const hits = Object.entries(t.toJSON().Resources as Record<string, Json>).filter(([, r]) =>
    String(r.Metadata?.['aws:cdk:path'] ?? '').endsWith(suffix),
  );
  if (hits.length !== 1) throw new Error(`expected one resource at */${suffix}, found ${hits.length}`);
  return hits[0][0];
}

/** Statements of the IAM policy attached to the role with logical id `roleId`. */
export function statementsOfRole(t: Template, roleId: string): Json[] {
  const policies = resourcesOfType(t, 'AWS::IAM::Policy').filter(([, p]) =>
    (p.Properties.Roles as Json[]).some((r) => r.Ref === roleId),
  );
  return policies.flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[]);
}

export function asList<T>(v: T | T[]): T[] {
  return Array.isArray(v) ? v : [v];
}

/** The statement with `sid` (fails if absent). */
export function statement(statements: Json[], sid: string): Json {
  const s = statements.find((x) => x.Sid === sid);
  if (s === undefined) throw new Error(`no statement ${sid} among ${statements.map((x) => x.Sid).join(', ')}`);
  return s;
}

export function getAtt(id: string, attr = 'Arn'): Json {
  return { 'Fn::GetAtt': [id, attr] };
}
