//! CloudWatch embedded metric format: one JSON line per invocation that CloudWatch Logs turns
//! into metrics (namespace `trailwatch`, no dimensions), without a PutMetricData call.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::engine::Stats;

/// The namespace every trailwatch metric goes to.
pub const NAMESPACE: &str = "trailwatch";

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    Count,
    Milliseconds,
}

/// One named value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
    pub unit: Unit,
}

impl Metric {
    pub fn count(name: &'static str, value: u64) -> Self {
        #[allow(clippy::cast_precision_loss)] // Counts per invocation stay far below 2^52.
        let value = value as f64;
        Self {
            name,
            value,
            unit: Unit::Count,
        }
    }

    pub fn millis(name: &'static str, value: f64) -> Self {
        Self {
            name,
            value,
            unit: Unit::Milliseconds,
        }
    }
}

/// The counters an operator alarms on, for what changed between `before` and `after`.
pub fn engine_metrics(before: &Stats, after: &Stats) -> Vec<Metric> {
    vec![
        Metric::count("Quarantined", after.quarantined - before.quarantined),
        Metric::count("Duplicates", after.duplicates - before.duplicates),
        Metric::count("LateEvents", after.late - before.late),
        Metric::count("BatchesSent", after.batches - before.batches),
        Metric::count("SendFailures", after.send_failures - before.send_failures),
        Metric::count("SummaryFallbacks", after.fallbacks - before.fallbacks),
        Metric::count("AlertsQueued", after.queued_alerts - before.queued_alerts),
        Metric::count("Heartbeats", after.heartbeats - before.heartbeats),
        Metric::count("FlushDeferred", after.deferred - before.deferred),
        Metric::count(
            "BelowThreshold",
            after.below_threshold - before.below_threshold,
        ),
    ]
}

/// One embedded-metric-format line (no trailing newline).
pub fn emf_line(timestamp: DateTime<Utc>, metrics: &[Metric]) -> String {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"Name": m.name, "Unit": m.unit}))
        .collect();
    let mut root = Map::new();
    root.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": definitions,
            }],
        }),
    );
    for metric in metrics {
        root.insert(metric.name.to_owned(), json!(metric.value));
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_the_emf_shape() {
        let at = DateTime::from_timestamp_millis(1_793_588_937_137).unwrap_or_default();
        let line = emf_line(
            at,
            &[
                Metric::count("RecordsIn", 3),
                Metric::millis("FlushLatency", 12.5),
            ],
        );
        let value: Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(value["_aws"]["Timestamp"], 1_793_588_937_137_i64);
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "trailwatch");
        assert_eq!(directive["Dimensions"], json!([[]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "RecordsIn", "Unit": "Count"}, {"Name": "FlushLatency", "Unit": "Milliseconds"}])
        );
        assert_eq!(value["RecordsIn"], 3.0);
        assert_eq!(value["FlushLatency"], 12.5);
    }

    #[test]
    fn engine_metrics_are_deltas() {
        let before = Stats {
            quarantined: 2,
            duplicates: 1,
            ..Stats::default()
        };
        let after = Stats {
            quarantined: 5,
            duplicates: 1,
            late: 2,
            batches: 4,
            ..Stats::default()
        };
        let metrics = engine_metrics(&before, &after);
        let get = |name: &str| metrics.iter().find(|m| m.name == name).map(|m| m.value);
        assert_eq!(get("Quarantined"), Some(3.0));
        assert_eq!(get("Duplicates"), Some(0.0));
        assert_eq!(get("LateEvents"), Some(2.0));
        assert_eq!(get("BatchesSent"), Some(4.0));
    }
}
