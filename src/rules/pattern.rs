//! The EventBridge event pattern that forwards, from each member account, exactly the events the
//! pack's rules match.
//!
//! Shape: `{"$or": [branch, ...]}` (a lone branch is emitted bare). Each branch is one rule, or
//! several rules merged when that changes nothing:
//! - rules that differ only in `name` become one branch with the union of their names;
//! - branches that differ only in `detail-type` become one branch with the union of detail-types.
//!
//! Mapping of a rule's match:
//! - `detail_type` -> `detail-type`; a rule without it applies to the three CloudTrail
//!   detail-types (API call, console sign-in, service event), never to the EC2 state change.
//! - `source` -> the envelope `source`, derived as `aws.<label>` from `<label>.amazonaws.com`
//!   (`iam.amazonaws.com` -> `aws.iam`), which is how EventBridge labels CloudTrail events; a
//!   source glob that is not of that exact form is matched on `detail.eventSource` instead.
//! - the EC2 state change has no `eventSource`/`eventName`: its facts are the constants
//!   `ec2.amazonaws.com`/`InstanceStateChange`, so those conditions are decided here (source ->
//!   `"source": ["aws.ec2"]`, name -> nothing) and only `state` goes to `detail.state`.
//! - any other key -> its `detail.*` path (see `Field::path`); a glob -> an exact string,
//!   `prefix`, `suffix` or `wildcard`; `{ exists = b }` -> `{"exists": b}`; a bool -> the JSON bool.
//! - a path key -> its path under its root (`request.name` -> `detail.requestParameters.name`),
//!   with the same operators. The EC2 state change has no `requestParameters`: a path condition
//!   that absence satisfies (`{ exists = false }`) is left out of its branch, any other makes the
//!   branch impossible.
//!
//! Ignore entries are not subtracted: ignored events are forwarded and dropped by the pack.
//!
//! Limits (EventBridge, as documented at the time of writing):
//! - an event pattern is at most 2048 characters by default (service quota "Event pattern size"),
//!   raisable to 4096 on request; `PutRule`'s `EventPattern` and a Pipe filter accept at most 4096.
//!   [`event_patterns`] splits the pack into as many patterns (one EventBridge rule each) as a
//!   limit needs;
//! - `wildcard` rejects consecutive `*` (the glob compiler refuses `**` for that reason);
//! - EventBridge also bounds the complexity of a pattern (number of `$or` combinations, wildcard
//!   complexity); this generator uses one `$or` level and few wildcards, far inside those bounds.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use crate::event::EventKind;

use super::RulePack;
use super::RulesError;
use super::matcher::{Cond, Field, KindSet, Matcher, field_holds, state_change_facts};
use super::value::{Organization, Scope};

/// The default "Event pattern size" quota, in characters.
pub const EVENT_PATTERN_DEFAULT_LIMIT: usize = 2048;
/// The largest pattern `PutRule` accepts (after a quota increase).
pub const EVENT_PATTERN_MAX_LIMIT: usize = 4096;

/// One pattern for the whole pack (`{"$or": [...]}`); its compact JSON may exceed
/// [`EVENT_PATTERN_DEFAULT_LIMIT`], see [`event_patterns`].
pub fn event_pattern(pack: &RulePack) -> Value {
    assemble(branches(pack).iter().map(Branch::to_json).collect())
}

/// The pack's pattern split into patterns whose compact JSON is at most `limit` characters each:
/// deploy one EventBridge rule per pattern, all with the same target. Together they match exactly
/// what [`event_pattern`] matches.
pub fn event_patterns(pack: &RulePack, limit: usize) -> Result<Vec<Value>, RulesError> {
    let mut pieces = Vec::new();
    for branch in branches(pack) {
        split_branch(&branch, limit, &mut pieces)?;
    }
    let mut patterns = Vec::new();
    let mut group: Vec<Value> = Vec::new();
    for piece in pieces {
        group.push(piece);
        if group.len() > 1 && compact_len(&assemble(group.clone())) > limit {
            let last = group.pop().into_iter().collect();
            patterns.push(assemble(std::mem::replace(&mut group, last)));
        }
    }
    if !group.is_empty() {
        patterns.push(assemble(group));
    }
    Ok(patterns)
}

/// Length of the compact JSON text of a pattern, as EventBridge counts it.
pub fn compact_len(pattern: &Value) -> usize {
    pattern.to_string().chars().count()
}

fn assemble(mut branches: Vec<Value>) -> Value {
    if branches.len() == 1 {
        branches.remove(0)
    } else {
        json!({ "$or": branches })
    }
}

/// A branch too large alone is split by halving its name list.
fn split_branch(branch: &Branch, limit: usize, out: &mut Vec<Value>) -> Result<(), RulesError> {
    let value = branch.to_json();
    let len = compact_len(&value);
    if len <= limit {
        out.push(value);
        return Ok(());
    }
    match &branch.names {
        Some(names) if names.len() > 1 => {
            let mut first = names.clone();
            let second = first.split_off(&nth_key(names, names.len() / 2));
            for names in [first, second] {
                split_branch(
                    &Branch {
                        names: Some(names),
                        ..branch.clone()
                    },
                    limit,
                    out,
                )?;
            }
            Ok(())
        }
        _ => Err(RulesError::PatternTooLarge { len, limit }),
    }
}

fn nth_key(map: &BTreeMap<String, Value>, n: usize) -> String {
    map.keys().nth(n).cloned().unwrap_or_default()
}

/// A conjunction of conditions on envelope paths.
#[derive(Debug, Clone)]
struct Branch {
    kinds: KindSet,
    /// `detail.eventName` operators keyed by their JSON text (sorted, deduplicated); `None`: any.
    names: Option<BTreeMap<String, Value>>,
    /// Every other condition, path -> operator list, in a canonical order.
    rest: BTreeMap<Vec<String>, Vec<Value>>,
}

impl Branch {
    fn rest_key(&self) -> String {
        format!("{:?}", self.rest)
    }

    fn names_key(&self) -> String {
        format!(
            "{:?}",
            self.names.as_ref().map(|n| n.keys().collect::<Vec<_>>())
        )
    }

    /// True when every event `other` matches, `self` matches too: `self` has no more detail-types
    /// to satisfy, and each of its conditions is implied by one of `other`'s.
    fn covers(&self, other: &Self) -> bool {
        let ops_subset =
            |mine: &[Value], theirs: &[Value]| theirs.iter().all(|op| mine.contains(op));
        other.kinds.intersect(self.kinds) == other.kinds
            && self.rest.iter().all(|(path, mine)| {
                other
                    .rest
                    .get(path)
                    .is_some_and(|theirs| ops_subset(mine, theirs))
            })
            && match (&self.names, &other.names) {
                (None, _) => true,
                (Some(mine), Some(theirs)) => theirs.keys().all(|k| mine.contains_key(k)),
                (Some(_), None) => false,
            }
    }

    fn to_json(&self) -> Value {
        let mut root = Map::new();
        let types: Vec<Value> = self.kinds.iter().map(|k| json!(k.detail_type())).collect();
        insert(&mut root, &["detail-type"], Value::Array(types));
        for (path, ops) in &self.rest {
            insert(&mut root, path, Value::Array(ops.clone()));
        }
        if let Some(names) = &self.names {
            insert(
                &mut root,
                Field::Name.path(),
                names.values().cloned().collect(),
            );
        }
        Value::Object(root)
    }
}

fn insert<S: AsRef<str>>(root: &mut Map<String, Value>, path: &[S], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = root;
    for key in parents {
        let child = node
            .entry(key.as_ref().to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !child.is_object() {
            *child = Value::Object(Map::new());
        }
        let Value::Object(map) = child else { return };
        node = map;
    }
    node.insert(last.as_ref().to_owned(), value);
}

fn owned(path: &[&str]) -> Vec<String> {
    path.iter().map(|k| (*k).to_owned()).collect()
}

fn glob_ops(cond: &Cond) -> Vec<Value> {
    cond.pattern_ops()
}

/// `aws.<label>` for each source, when every source is exactly `<label>.amazonaws.com`.
fn envelope_sources(cond: &Cond) -> Option<Vec<Value>> {
    cond.exact_values()?
        .into_iter()
        .map(|s| {
            let label = s.strip_suffix(".amazonaws.com")?;
            (!label.is_empty() && !label.contains('.')).then(|| json!(format!("aws.{label}")))
        })
        .collect()
}

/// The branches of one rule: one for its CloudTrail detail-types, one for the EC2 state change.
fn rule_branches(m: &Matcher) -> Vec<Branch> {
    let mut out = Vec::new();
    let cloudtrail = m.kinds().intersect(KindSet::CLOUDTRAIL);
    if !cloudtrail.is_empty() {
        let mut branch = Branch {
            kinds: cloudtrail,
            names: None,
            rest: BTreeMap::new(),
        };
        for (field, cond) in m.conds() {
            match (field, cond, envelope_sources(cond)) {
                (Field::Source, _, Some(sources)) => {
                    branch.rest.insert(owned(&["source"]), sources);
                }
                (Field::Name, Cond::Globs(_), _) => {
                    let ops = glob_ops(cond).into_iter().map(|v| (v.to_string(), v));
                    branch.names = Some(ops.collect());
                }
                _ => {
                    branch.rest.insert(owned(field.path()), glob_ops(cond));
                }
            }
        }
        for p in m.paths() {
            branch.rest.insert(p.envelope_path(), glob_ops(p.cond()));
        }
        out.push(branch);
    }
    if m.kinds().contains(EventKind::StateChange) {
        let facts = state_change_facts();
        let organization = Organization::default();
        let scope = Scope {
            organization: &organization,
            account: "",
        };
        let mut branch = Branch {
            kinds: KindSet::STATE_CHANGE,
            names: None,
            rest: BTreeMap::new(),
        };
        let mut possible = true;
        for (field, cond) in m.conds() {
            match field {
                // Constants of every state change (the decoder's): decided here.
                Field::Source
                | Field::Name
                | Field::IdentityType
                | Field::InvokedBy
                | Field::ReadOnly => {
                    possible &= field_holds(cond, field.value(&facts), &scope);
                    if *field == Field::Source {
                        branch
                            .rest
                            .insert(owned(&["source"]), vec![json!("aws.ec2")]);
                    }
                }
                // The envelope's region: a state change has no `detail.awsRegion`.
                Field::Region => {
                    branch.rest.insert(owned(&["region"]), glob_ops(cond));
                }
                _ => {
                    branch.rest.insert(owned(field.path()), glob_ops(cond));
                }
            }
        }
        possible &= m.paths().iter().all(|p| p.holds(&facts, &scope));
        if possible {
            out.push(branch);
        }
    }
    out
}

/// All branches of the pack, merged, in order of first appearance.
fn branches(pack: &RulePack) -> Vec<Branch> {
    let all = pack.matchers().flat_map(|(_, m)| rule_branches(m));
    // Same detail-types and other conditions: union the names (no name condition absorbs).
    let by_names = merge(
        all,
        |b| format!("{:?}|{}", b.kinds, b.rest_key()),
        |into, b| match (&mut into.names, b.names) {
            (Some(names), Some(more)) => names.extend(more),
            (names, _) => *names = None,
        },
    );
    // Same names and other conditions: union the detail-types.
    let merged = merge(
        by_names.into_iter(),
        |b| format!("{}|{}", b.names_key(), b.rest_key()),
        |into, b| into.kinds = into.kinds.union(b.kinds),
    );
    drop_covered(merged)
}

/// Drop each branch that another kept branch already covers (matches everything it matches).
fn drop_covered(branches: Vec<Branch>) -> Vec<Branch> {
    let mut dropped = vec![false; branches.len()];
    for i in 0..branches.len() {
        dropped[i] =
            (0..branches.len()).any(|j| j != i && !dropped[j] && branches[j].covers(&branches[i]));
    }
    branches
        .into_iter()
        .zip(dropped)
        .filter_map(|(b, d)| (!d).then_some(b))
        .collect()
}

fn merge(
    branches: impl Iterator<Item = Branch>,
    key: impl Fn(&Branch) -> String,
    join: impl Fn(&mut Branch, Branch),
) -> Vec<Branch> {
    let mut out: Vec<Branch> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for branch in branches {
        let k = key(&branch);
        if let Some(&i) = seen.get(&k) {
            join(&mut out[i], branch);
        } else {
            seen.insert(k, out.len());
            out.push(branch);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test fixtures")]
mod tests {
    use super::*;

    fn pack(text: &str) -> RulePack {
        RulePack::from_toml(text).unwrap()
    }

    #[test]
    fn rules_differing_only_in_names_share_a_branch() {
        let p = pack(
            r#"
[[rule]]
id = "a"
title = "A"
severity = "yellow"
[rule.match]
source = "iam.amazonaws.com"
name = ["CreateUser", "DeleteUser"]
[[rule]]
id = "b"
title = "B"
severity = "red"
[rule.match]
source = "iam.amazonaws.com"
name = ["Put*Policy", "CreateUser"]
[[rule]]
id = "c"
title = "C"
severity = "red"
[rule.match]
detail_type = "AWS API Call via CloudTrail"
source = "iam.amazonaws.com"
name = ["CreateUser", "DeleteUser"]
"#,
        );
        // `c` is covered by the merged `a`+`b` branch, so it adds nothing.
        assert_eq!(
            event_pattern(&p),
            json!({
                "detail-type": ["AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail", "AWS Service Event via CloudTrail"],
                "source": ["aws.iam"],
                "detail": {"eventName": ["CreateUser", "DeleteUser", {"wildcard": "Put*Policy"}]}
            })
        );
    }

    #[test]
    fn branches_differing_only_in_detail_type_merge() {
        let p = pack(
            r#"
[[rule]]
id = "a"
title = "A"
severity = "yellow"
match = { detail_type = "AWS API Call via CloudTrail", user_name = "x" }
[[rule]]
id = "b"
title = "B"
severity = "red"
match = { detail_type = "AWS Console Sign In via CloudTrail", user_name = "x" }
[[rule]]
id = "c"
title = "C"
severity = "red"
match = { detail_type = "AWS Service Event via CloudTrail", user_name = "y" }
"#,
        );
        assert_eq!(
            event_pattern(&p),
            json!({"$or": [
                {"detail-type": ["AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail"], "detail": {"userIdentity": {"userName": ["x"]}}},
                {"detail-type": ["AWS Service Event via CloudTrail"], "detail": {"userIdentity": {"userName": ["y"]}}}
            ]})
        );
    }

    #[test]
    fn state_change_uses_the_ec2_envelope_and_detail_state() {
        let p = pack(
            r#"
[[rule]]
id = "t"
title = "T"
severity = "yellow"
[rule.match]
detail_type = "EC2 Instance State-change Notification"
source = "ec2.amazonaws.com"
name = "InstanceStateChange"
state = ["terminated", "shutting-*"]
"#,
        );
        assert_eq!(
            event_pattern(&p),
            json!({
                "detail-type": ["EC2 Instance State-change Notification"],
                "source": ["aws.ec2"],
                "detail": {"state": ["terminated", {"prefix": "shutting-"}]}
            })
        );
    }

    #[test]
    fn exists_bools_and_underivable_sources() {
        let p = pack(
            r#"
[[rule]]
id = "root"
title = "Root"
severity = "red"
[rule.match]
detail_type = ["AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail"]
identity_type = "Root"
invoked_by = { exists = false }
read_only = false
source = "*.amazonaws.com"
user_agent = "*console*"
"#,
        );
        assert_eq!(
            event_pattern(&p),
            json!({
                "detail-type": ["AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail"],
                "detail": {
                    "eventSource": [{"suffix": ".amazonaws.com"}],
                    "readOnly": [false],
                    "userAgent": [{"wildcard": "*console*"}],
                    "userIdentity": {"type": ["Root"], "invokedBy": [{"exists": false}]}
                }
            })
        );
    }

    #[test]
    fn request_paths_go_under_request_parameters() {
        let p = pack(
            r#"
[[rule]]
id = "tamper"
title = "t"
severity = "red"
[rule.match]
source = "events.amazonaws.com"
name = "DisableRule"
request = { name = ["trailwatch", "trailwatch-*", "*-forward", "t*h*d"], "a.b" = { exists = false } }
[[rule]]
id = "state"
title = "s"
severity = "yellow"
[rule.match]
detail_type = "EC2 Instance State-change Notification"
state = "terminated"
request.anything = { exists = false }
"#,
        );
        assert_eq!(
            event_pattern(&p),
            json!({"$or": [
                {
                    "detail-type": ["AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail", "AWS Service Event via CloudTrail"],
                    "source": ["aws.events"],
                    "detail": {
                        "eventName": ["DisableRule"],
                        "requestParameters": {
                            "a": {"b": [{"exists": false}]},
                            "name": ["trailwatch", {"prefix": "trailwatch-"}, {"suffix": "-forward"}, {"wildcard": "t*h*d"}]
                        }
                    }
                },
                {"detail-type": ["EC2 Instance State-change Notification"], "detail": {"state": ["terminated"]}}
            ]}),
            "a state change has no requestParameters: absence needs no pattern"
        );
    }

    #[test]
    fn a_branch_covered_by_another_is_dropped() {
        let p = pack(
            r#"
[[rule]]
id = "narrow"
title = "n"
severity = "yellow"
match = { error_code = "AccessDenied*", read_only = false, detail_type = "AWS API Call via CloudTrail" }
[[rule]]
id = "broad"
title = "b"
severity = "green"
match = { error_code = ["*UnauthorizedOperation", "AccessDenied*"] }
[[rule]]
id = "other"
title = "o"
severity = "green"
match = { error_code = "AccessDenied*", user_agent = "x" }
"#,
        );
        let pattern = event_pattern(&p);
        assert_eq!(
            pattern["detail"]["errorCode"],
            json!([{"suffix": "UnauthorizedOperation"}, {"prefix": "AccessDenied"}]),
            "{pattern}"
        );
    }

    #[test]
    fn builtin_pattern_length_and_split() {
        let p = RulePack::builtin();
        let whole = event_pattern(&p);
        let len = compact_len(&whole);
        println!(
            "builtin pattern: {len} characters compact, {} branches",
            whole["$or"].as_array().map_or(1, Vec::len)
        );
        // A tripwire, not a limit (the split below is what EventBridge needs): the tamper rules
        // took it past 8,192, each its own branch as each tests its own request parameter, and
        // the attack-technique rules past 12,288 (about 12,500 characters, seven member rules),
        // and the data-store and sharing rules of issue 18 past 16,384 (ten member rules).
        assert!(
            len <= 6 * EVENT_PATTERN_MAX_LIMIT,
            "pattern grew to {len} characters"
        );

        for limit in [EVENT_PATTERN_DEFAULT_LIMIT, EVENT_PATTERN_MAX_LIMIT] {
            let parts = event_patterns(&p, limit).unwrap();
            println!(
                "split for {limit}: {} patterns of {:?} characters",
                parts.len(),
                parts.iter().map(compact_len).collect::<Vec<_>>()
            );
            assert!(parts.iter().all(|v| compact_len(v) <= limit));
        }
        // Splitting halves name lists only: the largest branch of one name (the stack tamper
        // rule's, with its eight stack-name globs) sets how small a limit can get.
        let parts = event_patterns(&p, 600).unwrap();
        assert!(parts.iter().all(|v| compact_len(v) <= 600));
        assert!(matches!(
            event_patterns(&p, 40),
            Err(RulesError::PatternTooLarge { .. })
        ));
    }
}
