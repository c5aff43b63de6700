//! What an event touched, read from its request parameters, response elements and `resources`:
//! each thing once, by its most readable name, and a count of those found beyond the ones kept.
//!
//! Reading is two passes. The walk collects candidates (an identifier key and its string value)
//! without building the JSON, and settles each object as it closes: a `{name, value}` pair in a
//! list is a setting (an environment variable, an option), not a resource, and `userId` beside
//! `userName` names the same user. Then [`Candidates::settle`] keeps each thing once: an ARN is
//! dropped for the name or id it ends with (`arn:aws:iam::…:role/x` for `x`), and whatever is
//! found past [`MAX_RESOURCES`] is only counted.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::Resource;
use super::decode::Text;
use crate::enrich::redact::{RedactCache, is_secret_key};

/// Most resources kept per event; the rest are counted in [`Extracted::more`].
pub const MAX_RESOURCES: usize = 24;
/// Longest resource name kept (redacted, then cut).
pub const MAX_RESOURCE_CHARS: usize = 200;
/// Most candidates read from one event: bounds the work on a huge response.
const MAX_CANDIDATES: usize = 4096;
/// Longest value compared, in bytes: longer values are cut before they are compared or kept.
const MAX_VALUE_BYTES: usize = 1024;
/// Nesting below which nothing is read.
const MAX_DEPTH: usize = 6;

/// The resources of one event, and how many distinct others were found but not kept.
#[derive(Debug, Default)]
pub struct Extracted {
    pub resources: Vec<Resource>,
    pub more: u32,
}

/// Where an event's resources are written, borrowed from the record.
pub struct Sources<'a> {
    /// `eventSource`, e.g. `ec2.amazonaws.com`.
    pub source: &'a str,
    /// `eventName`, raw.
    pub name: &'a str,
    /// Instance ids an EC2 state-change notification names.
    pub instances: &'a [String],
    pub request: Option<&'a RawValue>,
    pub response: Option<&'a RawValue>,
    /// The record's `resources` list (`[{"ARN", "type"}]`).
    pub resources: Option<&'a RawValue>,
}

/// Reads the resources of one event.
pub fn extract(sources: &Sources<'_>, cache: &mut RedactCache) -> Extracted {
    let mut found = Candidates::default();
    for id in sources.instances {
        found.push("instanceId", id, 0);
    }
    let made = MADE
        .iter()
        .find(|m| m.source == sources.source && m.name == sources.name)
        .zip(sources.response)
        .is_some_and(|(made, response)| (made.read)(response.get(), &mut found));
    if !made {
        for raw in [sources.request, sources.response].into_iter().flatten() {
            found.walk(raw.get());
        }
    }
    if let Some(raw) = sources.resources
        && let Ok(list) = serde_json::from_str::<Vec<ArnResource>>(raw.get())
    {
        for resource in list {
            if let Some(arn) = resource.arn.as_deref() {
                let kind = resource.kind.as_deref().unwrap_or("ARN");
                found.push(kind, arn, 0);
            }
        }
    }
    found.settle(cache)
}

#[derive(Debug, Deserialize)]
struct ArnResource {
    #[serde(rename = "ARN")]
    arn: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// A call whose response lists what it made: those things are its resources, and the settings
/// it made them with (subnet, key pair, security groups, device names) are not. One line each.
struct Made {
    source: &'static str,
    name: &'static str,
    /// Pushes what the response lists; false when it lists nothing (then everything is read).
    read: fn(&str, &mut Candidates) -> bool,
}

const MADE: &[Made] = &[Made {
    source: "ec2.amazonaws.com",
    name: "RunInstances",
    read: launched_instances,
}];

/// `responseElements.instancesSet.items[].instanceId` of `RunInstances`.
fn launched_instances(response: &str, found: &mut Candidates) -> bool {
    #[derive(Deserialize)]
    struct Response {
        #[serde(rename = "instancesSet")]
        set: Option<Set>,
    }
    #[derive(Deserialize)]
    struct Set {
        #[serde(default)]
        items: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        #[serde(rename = "instanceId")]
        id: Option<String>,
    }
    let Ok(Response { set: Some(set) }) = serde_json::from_str::<Response>(response) else {
        return false;
    };
    let before = found.list.len();
    for id in set.items.iter().filter_map(|item| item.id.as_deref()) {
        found.push("instanceId", id, 0);
    }
    found.list.len() > before
}

/// A string found under an identifier key, before anything is decided about it.
#[derive(Debug)]
struct Candidate {
    /// The key it was found under, singular (`instanceIds` -> `instanceId`).
    kind: String,
    /// Percent-decoded when it was an encoded ARN; cut to [`MAX_VALUE_BYTES`].
    value: String,
    /// The object it was found directly in (0: none, or not known).
    object: u32,
}

#[derive(Debug, Default)]
struct Candidates {
    list: Vec<Candidate>,
    objects: u32,
}

/// Stops a walk once [`MAX_CANDIDATES`] were read (not a failure).
const ENOUGH: &str = "enough candidates";

impl Candidates {
    fn push(&mut self, kind: &str, value: &str, object: u32) {
        if self.list.len() >= MAX_CANDIDATES {
            return;
        }
        let value = decode_arn(value);
        let value = cut(&value, MAX_VALUE_BYTES);
        let account_number = value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit());
        // `/` (an IAM path), `*`, `-`: nothing a reader could look up.
        let named = value.chars().any(char::is_alphanumeric);
        if account_number || !named {
            return;
        }
        self.list.push(Candidate {
            kind: kind.to_owned(),
            value: value.to_owned(),
            object,
        });
    }

    fn full(&self) -> bool {
        self.list.len() >= MAX_CANDIDATES
    }

    /// Walks request parameters or response elements (valid JSON: the record parsed).
    fn walk(&mut self, json: &str) {
        let walk = Walk {
            key: "",
            depth: 0,
            object: 0,
            element: false,
            found: self,
        };
        // Stops early (an `ENOUGH` error) once the candidates are full.
        let _ = walk.deserialize(&mut serde_json::Deserializer::from_str(json));
    }

    /// Settles the candidates found directly in one object, now closed (see the module docs).
    fn close(&mut self, start: usize, object: u32, setting: bool) {
        let mut tail = self.list.split_off(start);
        let direct = |c: &Candidate| c.object == object;
        if setting {
            tail.retain(|c| !direct(c));
        } else {
            // `userId` beside `userName` (or `…Identifier`) in one object: the same thing.
            let named: Vec<&str> = tail
                .iter()
                .filter(|c| direct(c))
                .filter_map(|c| {
                    c.kind
                        .strip_suffix("Name")
                        .or_else(|| c.kind.strip_suffix("Identifier"))
                })
                .collect();
            let same: Vec<bool> = tail
                .iter()
                .map(|c| {
                    direct(c)
                        && c.kind
                            .strip_suffix("Id")
                            .is_some_and(|stem| named.contains(&stem))
                })
                .collect();
            let mut same = same.into_iter();
            tail.retain(|_| !same.next().unwrap_or(false));
        }
        self.list.append(&mut tail);
    }

    /// Each thing once, by its most readable name; beyond [`MAX_RESOURCES`], only counted.
    fn settle(self, cache: &mut RedactCache) -> Extracted {
        let mut kept: Vec<Candidate> = Vec::new();
        let mut beyond: HashSet<&str> = HashSet::new();
        let mut more = 0_u32;
        let list = self.list;
        for candidate in &list {
            let value = candidate.value.as_str();
            if kept.iter().any(|k| k.value == value) {
                continue;
            }
            if arn_resource(value).is_some() {
                if kept.iter().any(|k| names_same(value, &k.value)) {
                    continue;
                }
            } else if let Some(at) = kept.iter().position(|k| names_same(&k.value, value)) {
                // The name or id is what a reader knows the thing by: it takes the ARN's place.
                kept[at] = Candidate {
                    kind: candidate.kind.clone(),
                    value: value.to_owned(),
                    object: candidate.object,
                };
                continue;
            }
            if kept.len() < MAX_RESOURCES {
                kept.push(Candidate {
                    kind: candidate.kind.clone(),
                    value: value.to_owned(),
                    object: candidate.object,
                });
            } else if beyond_is_new(&mut beyond, value) {
                more = more.saturating_add(1);
            }
        }
        let resources = kept
            .iter()
            .map(|c| Resource {
                kind: cache.clean(&c.kind, 60),
                name: cache.clean(&c.value, MAX_RESOURCE_CHARS),
            })
            .collect();
        Extracted { resources, more }
    }
}

/// Whether a value found past the kept ones is a thing not counted yet; an ARN and the name it
/// ends with count once.
fn beyond_is_new<'v>(beyond: &mut HashSet<&'v str>, value: &'v str) -> bool {
    let keys: Vec<&str> = match arn_resource(value) {
        Some(resource) => std::iter::once(value)
            .chain(std::iter::once(resource))
            .chain(
                resource
                    .match_indices(['/', ':'])
                    .map(|(at, _)| &resource[at + 1..]),
            )
            .filter(|k| !k.is_empty())
            .collect(),
        None => vec![value],
    };
    let new = !keys.iter().any(|k| beyond.contains(k));
    beyond.extend(keys);
    new
}

/// The resource part of an ARN (`arn:aws:iam::111111111111:role/x` -> `role/x`), or `None` when
/// the value is not an ARN.
fn arn_resource(value: &str) -> Option<&str> {
    let rest = value.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let partition = parts.next()?;
    let service = parts.next()?;
    let _region = parts.next()?;
    let _account = parts.next()?;
    let resource = parts.next()?;
    (!partition.is_empty() && !service.is_empty() && !resource.is_empty()).then_some(resource)
}

/// True when `name` (not an ARN) is what the ARN `arn` names: its whole resource part, or the
/// end of it after a `/` or `:` (`role/service-role/x` and `x`; `function:f` and `f`).
fn names_same(arn: &str, name: &str) -> bool {
    let Some(resource) = arn_resource(arn) else {
        return false;
    };
    if name.is_empty() || arn_resource(name).is_some() {
        return false;
    }
    resource == name
        || resource
            .strip_suffix(name)
            .is_some_and(|head| head.ends_with('/') || head.ends_with(':'))
}

/// An ARN written percent-encoded (`arn%3Aaws%3Aiam%3A%3A…`, as EKS records `principalArn`),
/// decoded; any other value as it is.
fn decode_arn(value: &str) -> Cow<'_, str> {
    let encoded = value
        .get(..6)
        .is_some_and(|head| head.eq_ignore_ascii_case("arn%3a"));
    if !encoded {
        return Cow::Borrowed(value);
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(at + 1).and_then(|&b| hex(b)),
                bytes.get(at + 2).and_then(|&b| hex(b)),
            )
        {
            // Two hex digits: at most 0xFF, always a byte.
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).map_or(Cow::Borrowed(value), Cow::Owned)
}

/// At most `max` bytes, cut on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Keys whose string values name what an event touched. Plurals (`instanceIds`,
/// `roleArns`) hold lists of them.
fn is_identifier_key(key: &str) -> bool {
    const EXACT: &[&str] = &["name", "arn", "bucket", "key", "cidrIp", "cidrBlock"];
    // Attributes and settings of a thing, not things (compared ignoring case): an image, an
    // owner, a request, the DNS name or a device of an instance, a policy's version, a
    // function's revision and runtime, an RDS instance's certificate authority and its subnet
    // group's subnets.
    const NOT: &[&str] = &[
        "requestId",
        "creatorRequestId",
        "imageId",
        "ownerId",
        "groupOwnerId",
        "reservationId",
        "clientToken",
        "privateDnsName",
        "publicDnsName",
        "deviceName",
        "rootDeviceName",
        "defaultVersionId",
        "revisionId",
        "runtimeVersionArn",
        "cACertificateIdentifier",
        "cAIdentifier",
        "subnetIdentifier",
    ];
    let key = singular(key);
    (EXACT.contains(&key)
        || key.ends_with("Name")
        || key.ends_with("Id")
        || key.ends_with("Identifier")
        || key.ends_with("Arn")
        || key.ends_with("ARN"))
        && !NOT.iter().any(|not| not.eq_ignore_ascii_case(key))
        && !is_secret_key(key)
}

/// `instanceIds` -> `instanceId`, `roleArns` -> `roleArn`; any other key as it is.
fn singular(key: &str) -> &str {
    const PLURALS: &[&str] = &["Ids", "Arns", "ARNs", "Identifiers"];
    if PLURALS.iter().any(|p| key.ends_with(p)) {
        &key[..key.len() - 1]
    } else {
        key
    }
}

/// Objects and arrays under these keys (compared ignoring case) are not walked: states, tags,
/// policies, availability zones (RDS lists one per subnet), and settings whose names are not resources and whose values may be secrets:
/// environment variables (Lambda, ECS, CodeBuild, Glue, App Runner, API Gateway stage
/// variables) and Elastic Beanstalk options (`optionSettings`, `optionsToRemove`).
const SKIPPED_KEYS: &[&str] = &[
    "currentState",
    "previousState",
    "instanceState",
    "stateReason",
    "tagSet",
    "tags",
    "tagSpecificationSet",
    "policyDocument",
    "assumeRolePolicyDocument",
    "availabilityZone",
    "subnetAvailabilityZone",
    "environment",
    "environmentVariables",
    "environmentVariablesOverride",
    "runtimeEnvironmentVariables",
    "runtimeEnvironmentSecrets",
    "stageVariables",
    "variables",
    "secrets",
    "connectionProperties",
    "defaultArguments",
    "nonOverridableArguments",
    "optionSettings",
    "optionsToRemove",
    "parameters",
    "userData",
];

/// (A string under a secret key is never kept either: see [`is_identifier_key`].)
fn skipped(key: &str) -> bool {
    SKIPPED_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) || is_secret_key(key)
}

/// Keys that make an object in a list a setting (`{"name": "DB_HOST", "value": …}`,
/// `{"name": "API_KEY", "valueFrom": "arn:…"}`, `{"name": …, "valueSet": …}`): its name is not
/// a resource, whatever list it is in.
const VALUE_KEYS: &[&str] = &[
    "value",
    "Value",
    "values",
    "Values",
    "valueFrom",
    "valueSet",
];

/// SSM `targets` (`SendCommand`, `CreateAssociation`, maintenance windows):
/// `[{"key": "InstanceIds" | "tag:<name>" | …, "values": [...]}]`.
fn is_targets(key: &str) -> bool {
    key == "targets" || key == "Targets"
}

/// One element of an SSM `targets` list.
#[derive(Debug, Default)]
struct Target {
    key: Option<String>,
    values: Vec<String>,
}

impl Target {
    /// Most values read from one target.
    const MAX_VALUES: usize = 50;

    /// Instance ids as instances; anything else as `key=value` (`tag:Environment=prod`).
    fn push_into(self, found: &mut Candidates, object: u32) {
        let Some(key) = self.key.filter(|k| !k.is_empty() && k.len() <= 128) else {
            return;
        };
        for value in self.values {
            if key.eq_ignore_ascii_case("InstanceIds") {
                found.push("instanceId", &value, object);
            } else {
                found.push("target", &format!("{key}={value}"), object);
            }
        }
    }
}

/// Walks request parameters or response elements without building them (see the module docs).
struct Walk<'k, 'f> {
    key: &'k str,
    depth: usize,
    /// The object this value is directly in.
    object: u32,
    /// True for the elements of a list (`key` is then the list's key).
    element: bool,
    found: &'f mut Candidates,
}

impl Walk<'_, '_> {
    fn wants_more(&self) -> bool {
        self.depth <= MAX_DEPTH && !skipped(self.key)
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, value: &str) -> Result<(), E> {
        if is_identifier_key(self.key) {
            self.found.push(singular(self.key), value, self.object);
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.found.full() {
            return Err(serde::de::Error::custom(ENOUGH));
        }
        if !self.wants_more() {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        let Walk {
            key,
            depth,
            object,
            found,
            ..
        } = self;
        while seq
            .next_element_seed(Walk {
                key,
                depth: depth + 1,
                object,
                element: true,
                found: &mut *found,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.found.full() {
            return Err(serde::de::Error::custom(ENOUGH));
        }
        if !self.wants_more() {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        let Walk {
            key: under,
            depth,
            element,
            found,
            ..
        } = self;
        found.objects += 1;
        let object = found.objects;
        let start = found.list.len();
        let mut setting = false;
        let mut target = (element && is_targets(under)).then(Target::default);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            setting |= element && VALUE_KEYS.contains(&&*key);
            if let Some(target) = target.as_mut() {
                if matches!(&*key, "key" | "Key") {
                    target.key = map.next_value_seed(Scalar)?;
                    continue;
                }
                if matches!(&*key, "values" | "Values") {
                    target.values = map.next_value_seed(Scalars)?;
                    continue;
                }
            }
            map.next_value_seed(Walk {
                key: &key,
                depth: depth + 1,
                object,
                element: false,
                found: &mut *found,
            })?;
        }
        found.close(start, object, setting);
        if let Some(target) = target {
            target.push_into(found, object);
        }
        Ok(())
    }
}

/// A string, or `None` for any other JSON value (read and dropped).
struct Scalar;

impl<'de> DeserializeSeed<'de> for Scalar {
    type Value = Option<String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scalar {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, value: &str) -> Result<Option<String>, E> {
        Ok(Some(value.to_owned()))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<String>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// The strings of a list (at most [`Target::MAX_VALUES`]), or of a lone string.
struct Scalars;

impl<'de> DeserializeSeed<'de> for Scalars {
    type Value = Vec<String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scalars {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, value: &str) -> Result<Vec<String>, E> {
        Ok(vec![value.to_owned()])
    }

    fn visit_bool<E>(self, _: bool) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = seq.next_element_seed(Scalar)? {
            if let Some(value) = value
                && values.len() < Target::MAX_VALUES
            {
                values.push(value);
            }
        }
        Ok(values)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests;
