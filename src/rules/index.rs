//! Which rules could match an event, found by hashing its source and name.
//!
//! Most CloudTrail events come from services no rule names: for them, finding the candidates costs
//! one hash lookup plus the (few) rules that constrain no exact source.

use std::collections::HashMap;

use crate::event::Facts;

use super::matcher::{Cond, Field, Matcher};

#[derive(Debug, Clone, Default)]
pub struct Index {
    by_source: HashMap<String, Bucket, foldhash::fast::RandomState>,
    /// Rules whose `source` is absent or not all exact.
    any_source: Vec<usize>,
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    by_name: HashMap<String, Vec<usize>, foldhash::fast::RandomState>,
    /// Rules of this source whose `name` is absent or not all exact.
    any_name: Vec<usize>,
}

fn push_once(list: &mut Vec<usize>, i: usize) {
    if list.last() != Some(&i) {
        list.push(i);
    }
}

impl Index {
    /// Index matchers by position.
    pub fn build<'m>(matchers: impl IntoIterator<Item = &'m Matcher>) -> Self {
        let mut index = Self::default();
        for (i, m) in matchers.into_iter().enumerate() {
            let Some(sources) = m.cond(Field::Source).and_then(Cond::exact_values) else {
                index.any_source.push(i);
                continue;
            };
            let names = m.cond(Field::Name).and_then(Cond::exact_values);
            for source in sources {
                let bucket = index.by_source.entry(source.to_owned()).or_default();
                match &names {
                    Some(names) => {
                        for name in names {
                            push_once(bucket.by_name.entry((*name).to_owned()).or_default(), i);
                        }
                    }
                    None => push_once(&mut bucket.any_name, i),
                }
            }
        }
        index
    }

    /// Positions of the rules that may match `facts` (each once, in no particular order); the
    /// caller still runs their matchers.
    pub fn candidates<'s>(&'s self, facts: &Facts<'_>) -> impl Iterator<Item = usize> + 's {
        let bucket = self.by_source.get(facts.source);
        let named = bucket
            .and_then(|b| b.by_name.get(facts.name))
            .map_or(&[][..], Vec::as_slice);
        let any_name = bucket.map_or(&[][..], |b| b.any_name.as_slice());
        named
            .iter()
            .chain(any_name)
            .chain(&self.any_source)
            .copied()
    }
}
