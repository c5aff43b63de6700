//! Parts of a record kept as their JSON text, read only when a rule asks for a value inside.
//!
//! `requestParameters` differs with every API; decoding it for every event would cost every
//! event. The decoder keeps its text (borrowed from the input) and [`RawJson::at`] walks it only
//! when a rule that tests a request parameter is tried, building nothing: keys are compared as
//! they are read and every other value is skipped.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A JSON value of a record, as its text (valid JSON: the decoder checked it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawJson<'a>(&'a str);

/// What a path in a [`RawJson`] leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found<'a> {
    /// Nothing: a key on the way is missing, or a value on the way is not an object (a string,
    /// number, boolean or null has no keys). This is what EventBridge's `exists: false` sees.
    Absent,
    /// A string (borrowed unless it had escapes).
    Str(Cow<'a, str>),
    /// Something that is not a string: a number, boolean, null, object or array, or an array on
    /// the way (EventBridge would look into each element; trailwatch does not yet). No string
    /// condition holds for it, and neither does "absent".
    Other,
}

impl<'a> RawJson<'a> {
    pub fn new(text: &'a str) -> Self {
        Self(text)
    }

    /// The value at `path` (object keys, outermost first; an empty path is the value itself).
    /// Text that is not JSON gives [`Found::Other`], for which no condition holds.
    pub fn at<S: AsRef<str>>(self, path: &[S]) -> Found<'a> {
        let mut de = serde_json::Deserializer::from_str(self.0);
        Walk { path }.deserialize(&mut de).unwrap_or(Found::Other)
    }
}

/// Follows the rest of a path into the value being read.
struct Walk<'p, S> {
    path: &'p [S],
}

impl<'de, S: AsRef<str>> DeserializeSeed<'de> for Walk<'_, S> {
    type Value = Found<'de>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        match self.path.split_first() {
            None => deserializer.deserialize_any(Leaf),
            Some((key, rest)) => deserializer.deserialize_any(Step {
                key: key.as_ref(),
                rest,
            }),
        }
    }
}

/// The value at the end of the path.
struct Leaf;

impl<'de> Visitor<'de> for Leaf {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Found::Str(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Found::Str(Cow::Owned(value.to_owned())))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Found::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Found::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Found::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Found::Other)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Found::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_seq(seq)?;
        Ok(Found::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        skip_map(map)?;
        Ok(Found::Other)
    }
}

/// A value on the way: only an object with `key` leads further.
struct Step<'p, S> {
    key: &'p str,
    rest: &'p [S],
}

impl<'de, S: AsRef<str>> Visitor<'de> for Step<'_, S> {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Found::Absent)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Found::Absent)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Found::Absent)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Found::Absent)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Found::Absent)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Found::Absent)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_seq(seq)?;
        Ok(Found::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_key) = map.next_key_seed(KeyIs(self.key))? {
            // The first of duplicate keys counts; the rest of the object is read past.
            if is_key && found.is_none() {
                found = Some(map.next_value_seed(Walk { path: self.rest })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found.unwrap_or(Found::Absent))
    }
}

/// Reads an object key and says whether it is the one wanted, without keeping it.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test fixtures")]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn at<'a>(text: &'a str, path: &[&str]) -> Found<'a> {
        RawJson::new(text).at(path)
    }

    fn s(text: &str) -> Found<'_> {
        Found::Str(Cow::Borrowed(text))
    }

    #[test]
    fn strings_are_found_by_their_path() {
        let text =
            r#"{"name":"trailwatch-forward-1","nested":{"deeper":{"arn":"arn:aws:x"}},"n":3}"#;
        assert_eq!(at(text, &["name"]), s("trailwatch-forward-1"));
        assert_eq!(at(text, &["nested", "deeper", "arn"]), s("arn:aws:x"));
        assert!(
            matches!(at(text, &["name"]), Found::Str(Cow::Borrowed(_))),
            "no copy without escapes"
        );
        let escaped = r#"{"na\u006de":"a\"b"}"#;
        assert_eq!(
            at(escaped, &["name"]),
            Found::Str(Cow::Owned("a\"b".into()))
        );
    }

    #[test]
    fn absent_and_other_are_told_apart() {
        let text = r#"{"s":"x","n":3,"b":true,"z":null,"o":{"k":"v"},"a":["x"],"ao":[{"k":"v"}]}"#;
        // Nothing there: a missing key, or a key under a value that has none.
        for path in [
            &["missing"][..],
            &["s", "k"],
            &["n", "k"],
            &["z", "k"],
            &["o", "missing"],
        ] {
            assert_eq!(at(text, path), Found::Absent, "{path:?}");
        }
        // Something there that is not a string.
        for path in [&["n"][..], &["b"], &["z"], &["o"], &["a"], &["ao", "k"]] {
            assert_eq!(at(text, path), Found::Other, "{path:?}");
        }
        assert_eq!(
            at("null", &["name"]),
            Found::Absent,
            "requestParameters: null"
        );
        assert_eq!(at("\"x\"", &[]), s("x"));
        assert_eq!(at("{not json", &["name"]), Found::Other);
    }

    #[test]
    fn the_first_of_duplicate_keys_counts() {
        assert_eq!(at(r#"{"k":"first","k":"second"}"#, &["k"]), s("first"));
        assert_eq!(at(r#"{"k":{"x":"1"},"k":"second"}"#, &["k", "x"]), s("1"));
    }

    /// The same walk over a built `Value`: the reference the raw walk must agree with.
    fn reference(value: &Value, path: &[&str]) -> Found<'static> {
        let Some((key, rest)) = path.split_first() else {
            return match value {
                Value::String(text) => Found::Str(Cow::Owned(text.clone())),
                _ => Found::Other,
            };
        };
        match value {
            Value::Object(map) => map.get(*key).map_or(Found::Absent, |v| reference(v, rest)),
            Value::Array(_) => Found::Other,
            _ => Found::Absent,
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec!["name", "rule", "a", "b", "name\"q"]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-z\"\\\\é-]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..4).prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_raw_walk_agrees_with_a_built_value(
            value in json_value(),
            path in prop::collection::vec(prop::sample::select(vec!["name", "rule", "a", "b", "name\"q"]), 0..4),
            pretty in any::<bool>(),
        ) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                value.to_string()
            };
            let found = RawJson::new(&text).at(&path);
            prop_assert_eq!(found, reference(&value, &path), "{} at {:?}", text, path);
        }
    }

    #[test]
    fn reference_sanity() {
        let v = json!({"a": {"b": "c"}});
        assert_eq!(
            reference(&v, &["a", "b"]),
            Found::Str(Cow::Owned("c".into()))
        );
    }
}
