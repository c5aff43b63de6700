//! Which rules and ignore entries could match an event, found by hashing its source and name.
//!
//! Most CloudTrail events come from services no rule names: for them, finding the candidates costs
//! one hash lookup. Every list is complete where it is stored (exact names, plus the entries of
//! the source that constrain no exact name, plus those that constrain no exact source), so one
//! lookup per key answers for rules and ignore entries alike.

use std::collections::HashMap;

use crate::event::Facts;

use super::matcher::{Cond, Field, Matcher};

type Map<V> = HashMap<String, V, foldhash::fast::RandomState>;

#[derive(Debug, Clone, Default)]
pub struct Index {
    by_source: Map<Bucket>,
    /// For a source no entry names exactly.
    other_source: Candidates,
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    by_name: Map<Candidates>,
    /// For a name no entry of this source names exactly.
    other_name: Candidates,
}

/// Positions of the entries that may match, each once, in pack order; the caller still runs
/// their matchers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidates {
    pub ignores: Vec<usize>,
    pub rules: Vec<usize>,
}

/// Where the entries of one list (rules, or ignore entries) go: by exact source and name.
#[derive(Default)]
struct Placement {
    named: Map<Map<Vec<usize>>>,
    any_name: Map<Vec<usize>>,
    any_source: Vec<usize>,
}

impl Placement {
    fn of<'m>(matchers: impl IntoIterator<Item = &'m Matcher>) -> Self {
        let mut placement = Self::default();
        for (i, m) in matchers.into_iter().enumerate() {
            let Some(sources) = m.cond(Field::Source).and_then(Cond::exact_values) else {
                placement.any_source.push(i);
                continue;
            };
            let names = m.cond(Field::Name).and_then(Cond::exact_values);
            for source in sources {
                match &names {
                    Some(names) => {
                        let by_name = placement.named.entry(source.to_owned()).or_default();
                        for name in names {
                            by_name.entry((*name).to_owned()).or_default().push(i);
                        }
                    }
                    None => placement
                        .any_name
                        .entry(source.to_owned())
                        .or_default()
                        .push(i),
                }
            }
        }
        placement
    }

    fn sources(&self) -> impl Iterator<Item = &String> {
        self.named.keys().chain(self.any_name.keys())
    }

    fn names<'s>(&'s self, source: &str) -> impl Iterator<Item = &'s String> {
        self.named.get(source).into_iter().flat_map(Map::keys)
    }

    /// Every entry of this list that may match `source` and `name` (`None`: a name no entry
    /// of the source names exactly).
    fn candidates(&self, source: &str, name: Option<&str>) -> Vec<usize> {
        let named = name
            .and_then(|name| self.named.get(source)?.get(name))
            .into_iter()
            .flatten();
        let any_name = self.any_name.get(source).into_iter().flatten();
        let mut all: Vec<usize> = named
            .chain(any_name)
            .chain(&self.any_source)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

impl Index {
    /// Index rules and ignore entries by position.
    pub fn build<'m>(
        rules: impl IntoIterator<Item = &'m Matcher>,
        ignores: impl IntoIterator<Item = &'m Matcher>,
    ) -> Self {
        let rules = Placement::of(rules);
        let ignores = Placement::of(ignores);
        let candidates = |source: &str, name: Option<&str>| Candidates {
            ignores: ignores.candidates(source, name),
            rules: rules.candidates(source, name),
        };
        let mut index = Self {
            other_source: Candidates {
                ignores: ignores.any_source.clone(),
                rules: rules.any_source.clone(),
            },
            ..Self::default()
        };
        for source in rules.sources().chain(ignores.sources()) {
            if index.by_source.contains_key(source) {
                continue;
            }
            let mut bucket = Bucket {
                other_name: candidates(source, None),
                ..Bucket::default()
            };
            for name in rules.names(source).chain(ignores.names(source)) {
                bucket
                    .by_name
                    .insert(name.clone(), candidates(source, Some(name)));
            }
            index.by_source.insert(source.clone(), bucket);
        }
        index
    }

    /// The entries that may match `facts`.
    pub fn candidates(&self, facts: &Facts<'_>) -> &Candidates {
        match self.by_source.get(facts.source) {
            Some(bucket) => bucket.by_name.get(facts.name).unwrap_or(&bucket.other_name),
            None => &self.other_source,
        }
    }
}
