//! Parts of a record kept as their JSON text, read only when a rule asks for a value inside.
//!
//! `requestParameters`, `responseElements`, `additionalEventData` and `resources` differ with
//! every API; decoding them for every event would cost every event. The decoder keeps their text
//! (borrowed from the input), and [`RawJson::leaves`] reads it only when a rule that tests a
//! value inside is tried, which the rule's cheaper keys (source, name) gate.

use serde_json::Value;

/// A JSON value of a record, as its text (valid JSON: the decoder checked it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    pub fn new(text: &'a str) -> Self {
        Self(text)
    }

    /// The JSON text.
    pub fn text(self) -> &'a str {
        self.0
    }

    /// The scalar values (strings, numbers, booleans, nulls) at `path` (object keys, outermost
    /// first), read the way an EventBridge pattern reads them: an array met on the way, or at
    /// the end, stands for each of its elements (nested arrays too), and an object at the end is
    /// no value (EventBridge compares leaves only). Nothing there, or text that is not JSON,
    /// gives no values: what `exists: false` sees.
    ///
    /// Source: Amazon EventBridge User Guide, "Event patterns" (matching arrays: "If the value
    /// in the event is an array, then the event pattern matches if the intersection of the
    /// event pattern array and the event array is non-empty") and "Comparison operators"
    /// ("Comparison operators only work on leaf nodes").
    pub fn leaves<S: AsRef<str>>(self, path: &[S]) -> Vec<Value> {
        let Ok(value) = serde_json::from_str::<Value>(self.0) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        collect(&value, path, &mut out);
        out
    }
}

fn collect<S: AsRef<str>>(value: &Value, path: &[S], out: &mut Vec<Value>) {
    match (value, path.split_first()) {
        (Value::Array(items), _) => {
            for item in items {
                collect(item, path, out);
            }
        }
        (Value::Object(map), Some((key, rest))) => {
            if let Some(inner) = map.get(key.as_ref()) {
                collect(inner, rest, out);
            }
        }
        (Value::Object(_), None) | (_, Some(_)) => {}
        (scalar, None) => out.push(scalar.clone()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test fixtures")]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(text: &str, path: &[&str]) -> Vec<Value> {
        RawJson::new(text).leaves(path)
    }

    #[test]
    fn scalars_are_found_by_their_path() {
        let text = r#"{"name":"trailwatch-forward-1","nested":{"deeper":{"arn":"arn:aws:x"}},"n":3,"b":false,"z":null}"#;
        assert_eq!(at(text, &["name"]), [json!("trailwatch-forward-1")]);
        assert_eq!(at(text, &["nested", "deeper", "arn"]), [json!("arn:aws:x")]);
        assert_eq!(at(text, &["n"]), [json!(3)]);
        assert_eq!(at(text, &["b"]), [json!(false)]);
        assert_eq!(at(text, &["z"]), [Value::Null]);
        assert_eq!(at(r#"{"na\u006de":"a\"b"}"#, &["name"]), [json!("a\"b")]);
    }

    #[test]
    fn nothing_there_gives_no_values() {
        let text = r#"{"s":"x","n":3,"o":{"k":"v"},"e":[]}"#;
        for path in [
            &["missing"][..],
            &["s", "k"],
            &["n", "k"],
            &["o", "missing"],
            &["o"],
            &["e"],
        ] {
            assert!(at(text, path).is_empty(), "{path:?}");
        }
        assert!(at("null", &["name"]).is_empty(), "requestParameters: null");
        assert!(at("{not json", &["name"]).is_empty());
    }

    #[test]
    fn arrays_stand_for_each_of_their_elements() {
        // The shape of an EC2 AuthorizeSecurityGroupIngress request.
        let text = r#"{"ipPermissions":{"items":[
            {"ipRanges":{"items":[{"cidrIp":"10.0.0.0/8"},{"cidrIp":"0.0.0.0/0"}]}},
            {"ipRanges":{"items":[{"cidrIp":"192.168.0.0/16"}]}},
            {"ipv6Ranges":{"items":[{"cidrIpv6":"::/0"}]}}]}}"#;
        assert_eq!(
            at(
                text,
                &["ipPermissions", "items", "ipRanges", "items", "cidrIp"]
            ),
            [
                json!("10.0.0.0/8"),
                json!("0.0.0.0/0"),
                json!("192.168.0.0/16")
            ]
        );
        assert_eq!(
            at(
                r#"{"valuesToAdd":["111122223333",["all"]]}"#,
                &["valuesToAdd"]
            ),
            [json!("111122223333"), json!("all")],
            "an array at the end, nested arrays too"
        );
        assert_eq!(
            at(r#"[{"ARN":"arn:a"},{"ARN":"arn:b"}]"#, &["ARN"]),
            [json!("arn:a"), json!("arn:b")],
            "a root that is an array (resources)"
        );
    }
}
