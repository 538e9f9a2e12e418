//! Kafka sources: the consumer group's messages as positioned items. A partition's position
//! is stored like a file's, under `<source>:kafka:<topic>/<partition>`, as the next offset to
//! read; the store's commit is the commit point and Kafka hears of it afterwards.
//!
//! Partitions are read in step by event time, as Kafka Streams does: each partition's
//! messages wait in a buffer and the earliest head goes next, so a topic that is read faster
//! than another does not run the event-time clock ahead of it. A partition with nothing
//! buffered holds the others back until it is fetched or found at its end; while nothing
//! arrives at all it gives up after `MAX_IDLE` (end unknown) or `MAX_LATE` (known to hold
//! more, but the broker is not handing it over). Buffers are bounded by pausing the
//! partitions that fill them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use reconlight_kafka::{KafkaInput, KafkaMessage};
use regex::Regex;

use super::source::{Item, Outcome, SourceNotes, StatementNote, items_of};
use crate::config::{Config, KafkaConfig, SourceConfig};
use crate::metrics::Metrics;

/// Which source reads a topic.
struct Route {
    source: SourceConfig,
    exact: Vec<String>,
    patterns: Vec<Regex>,
}

impl Route {
    fn reads(&self, topic: &str) -> bool {
        self.exact.iter().any(|t| t == topic) || self.patterns.iter().any(|p| p.is_match(topic))
    }
}

/// The consumer with the sources its topics feed.
pub struct KafkaFeed {
    input: KafkaInput,
    routes: Vec<Route>,
    max_backlog: u64,
    last_lag_check: Option<Instant>,
    last_throttle_check: Option<Instant>,
    /// Decoded items waiting for their turn, per partition in offset order.
    buffers: BTreeMap<(String, i32), VecDeque<Item>>,
    /// The offset after the last message received, per partition.
    fetched_to: HashMap<(String, i32), i64>,
    /// The partition holding the others back, and since when.
    waiting_for: Option<((String, i32), Instant, Duration)>,
    /// Partitions already reported as holding the others back too long.
    gave_up_on: std::collections::BTreeSet<(String, i32)>,
    /// Whether the sinks' backlog asks for every partition to stop.
    backlog_pause: bool,
}

/// How long a partition never fetched yet may hold the others back while nothing arrives.
const MAX_IDLE: Duration = Duration::from_secs(2);

/// How long a partition known to hold unread messages may hold the others back while nothing
/// arrives: applying past it would run the event-time clock ahead of its messages.
const MAX_LATE: Duration = Duration::from_secs(30);

/// The store key of a partition's position.
pub fn position_key(source: &str, topic: &str, partition: i32) -> String {
    format!("{source}:{}", partition_label(topic, partition))
}

fn partition_label(topic: &str, partition: i32) -> String {
    format!("kafka:{topic}/{partition}")
}

/// (topic, partition) of an item read from Kafka.
pub fn partition_of(item: &Item) -> Option<(String, i32)> {
    let rest = item.file.strip_prefix("kafka:")?;
    let (topic, partition) = rest.rsplit_once('/')?;
    Some((topic.to_string(), partition.parse().ok()?))
}

impl KafkaFeed {
    /// Joins the consumer group if any source reads topics; `positions` are the store's.
    pub fn open(
        config: &Config,
        kafka: &KafkaConfig,
        positions: &BTreeMap<String, u64>,
    ) -> crate::error::Result<Option<KafkaFeed>> {
        let mut routes = Vec::new();
        let mut topics = Vec::new();
        for s in config.sources.iter().filter(|s| !s.topics.is_empty()) {
            let mut route = Route {
                source: s.clone(),
                exact: Vec::new(),
                patterns: Vec::new(),
            };
            for t in &s.topics {
                if t.starts_with('^') {
                    route.patterns.push(Regex::new(t)?);
                } else {
                    route.exact.push(t.clone());
                }
                topics.push(t.clone());
            }
            routes.push(route);
        }
        if routes.is_empty() {
            return Ok(None);
        }
        let mut start = HashMap::new();
        for (key, next) in positions {
            let Some((source, rest)) = key.split_once(":kafka:") else {
                continue;
            };
            let Some((topic, partition)) = rest.rsplit_once('/') else {
                continue;
            };
            let (Ok(partition), Ok(next)) = (partition.parse::<i32>(), i64::try_from(*next)) else {
                continue;
            };
            if routes
                .iter()
                .any(|r| r.source.name == source && r.reads(topic))
            {
                start.insert((topic.to_string(), partition), next);
            }
        }
        let input = KafkaInput::new(
            &kafka.brokers,
            &kafka.group_id,
            &topics,
            &kafka.consumer_config(),
            start,
        )
        .map_err(crate::error::ServiceError::kafka(format!(
            "joining group `{}` at {}",
            kafka.group_id, kafka.brokers
        )))?;
        Ok(Some(KafkaFeed {
            input,
            routes,
            max_backlog: kafka.max_outbox_backlog,
            last_lag_check: None,
            last_throttle_check: None,
            buffers: BTreeMap::new(),
            fetched_to: HashMap::new(),
            waiting_for: None,
            gave_up_on: Default::default(),
            backlog_pause: false,
        }))
    }

    /// Up to `max` items in event-time order across partitions; empty when nothing can go
    /// yet. Messages below the store's position (already applied) are skipped.
    pub fn next_batch(
        &mut self,
        config: &Config,
        positions: &BTreeMap<String, u64>,
        max: usize,
        notes: &mut Vec<(String, StatementNote)>,
    ) -> crate::error::Result<Vec<Item>> {
        if self.buffered() == 0 || self.holding_back(positions).is_some() {
            self.fill(config, positions, max, notes)?;
        }
        let mut batch = Vec::new();
        // Whether a buffer ran dry since the last look (so a partition may hold back).
        let mut dried = true;
        while batch.len() < max {
            if dried {
                match self.holding_back(positions) {
                    Some((p, patience)) => {
                        let since = match &self.waiting_for {
                            Some((q, since, _)) if *q == p => *since,
                            _ => {
                                tracing::debug!("kafka: waiting for {}/{}", p.0, p.1);
                                self.waiting_for = Some((p.clone(), Instant::now(), patience));
                                Instant::now()
                            }
                        };
                        if since.elapsed() < patience {
                            break;
                        }
                        if !self.gave_up_on.contains(&p) {
                            tracing::warn!(
                                "kafka: {}/{} delivered nothing for {}s although it holds more; applying the other partitions ahead of it",
                                p.0,
                                p.1,
                                patience.as_secs()
                            );
                            self.gave_up_on.insert(p.clone());
                        }
                    }
                    None => self.waiting_for = None,
                }
            }
            let Some((item, emptied)) = self.pop_earliest() else {
                break;
            };
            dried = emptied;
            batch.push(item);
        }
        self.bound_buffers(max);
        Ok(batch)
    }

    /// The buffered head with the earliest event time (items without one, such as errors,
    /// first); ties go to the source listed first, then to topic and partition order.
    fn pop_earliest(&mut self) -> Option<(Item, bool)> {
        let rank = |source: &str| self.routes.iter().position(|r| r.source.name == source);
        let key = self
            .buffers
            .iter()
            .filter_map(|(key, q)| {
                let head = q.front()?;
                let time = match &head.outcome {
                    Outcome::Record(_, t) => Some(*t),
                    _ => None,
                };
                Some(((time, rank(&head.source)), key))
            })
            .min()?
            .1
            .clone();
        let queue = self.buffers.get_mut(&key)?;
        let item = queue.pop_front()?;
        let emptied = queue.is_empty();
        if emptied {
            self.buffers.remove(&key);
        }
        Some((item, emptied))
    }

    /// Whether a partition with nothing buffered is holding the others back.
    pub fn waiting(&self) -> bool {
        self.waiting_for
            .as_ref()
            .is_some_and(|(_, since, patience)| since.elapsed() < *patience)
    }

    fn buffered(&self) -> usize {
        self.buffers.values().map(VecDeque::len).sum()
    }

    /// An assigned partition with nothing buffered that may still have messages, with how
    /// long it may hold the others back.
    fn holding_back(&self, positions: &BTreeMap<String, u64>) -> Option<((String, i32), Duration)> {
        let read = self.input.read_positions();
        self.input
            .assignment()
            .into_iter()
            .find_map(|(topic, partition)| {
                let key = (topic.clone(), partition);
                if self.buffers.get(&key).is_some_and(|b| !b.is_empty()) {
                    return None;
                }
                let Some(end) = self.input.cached_end(&topic, partition) else {
                    return Some((key, MAX_IDLE));
                };
                let stored = self
                    .routes
                    .iter()
                    .find(|r| r.reads(&topic))
                    .and_then(|r| positions.get(&position_key(&r.source.name, &topic, partition)))
                    .map_or(0, |n| *n as i64);
                let next = [self.fetched_to.get(&key), read.get(&key)]
                    .into_iter()
                    .flatten()
                    .fold(stored, |a, b| a.max(*b));
                (next < end).then_some((key, MAX_LATE))
            })
    }

    /// Pauses partitions whose buffer is full (and all of them while the sinks lag).
    fn bound_buffers(&self, max: usize) {
        let full: std::collections::BTreeSet<(String, i32)> = if self.backlog_pause {
            self.input.assignment().into_iter().collect()
        } else {
            self.buffers
                .iter()
                .filter(|(_, b)| b.len() >= 4 * max.max(100))
                .map(|(k, _)| k.clone())
                .collect()
        };
        if let Err(e) = self.input.set_paused(&full) {
            tracing::warn!("kafka: pausing partitions: {e}");
        }
    }

    /// Polls the consumer once and buffers what came.
    fn fill(
        &mut self,
        config: &Config,
        positions: &BTreeMap<String, u64>,
        max: usize,
        notes: &mut Vec<(String, StatementNote)>,
    ) -> crate::error::Result<()> {
        let messages = self
            .input
            .poll_batch(max, Duration::from_millis(200))
            .map_err(crate::error::ServiceError::kafka("polling"))?;
        for p in self.input.take_revoked() {
            self.buffers.remove(&p);
            self.fetched_to.remove(&p);
        }
        // The clock of a partition holding the others back runs only while the consumer
        // has nothing else to hand over: a long queue ahead of it is not silence.
        if !messages.is_empty()
            && let Some((_, since, _)) = &mut self.waiting_for
        {
            *since = Instant::now();
        }
        for m in messages {
            let partition = (m.topic.clone(), m.partition);
            if !self.gave_up_on.is_empty() {
                self.gave_up_on.remove(&partition);
            }
            self.fetched_to.insert(partition, m.offset + 1);
            let route = self.routes.iter().find(|r| r.reads(&m.topic));
            let source_name = route.map_or("kafka", |r| r.source.name.as_str());
            let key = position_key(source_name, &m.topic, m.partition);
            if positions
                .get(&key)
                .is_some_and(|next| (m.offset as u64) < *next)
            {
                continue;
            }
            let items = match route {
                Some(r) => {
                    let mut found = SourceNotes::default();
                    let items = message_items(config, &r.source, &m, &mut found);
                    notes.extend(found.notes.into_iter().map(|n| (r.source.name.clone(), n)));
                    items
                }
                None => vec![item(
                    "kafka",
                    &m,
                    format!("offset {}", m.offset),
                    Outcome::Error(format!("no source reads topic {}", m.topic)),
                )],
            };
            self.buffers
                .entry((m.topic.clone(), m.partition))
                .or_default()
                .extend(items);
        }
        Ok(())
    }

    /// Tells Kafka what the store committed: (topic, partition, next offset).
    pub fn committed(&self, next: &[(String, i32, i64)]) {
        if let Err(e) = self.input.committed(next) {
            // The store holds the truth; Kafka's copy is for tools watching the group.
            tracing::warn!("kafka: committing offsets: {e}");
        }
    }

    /// True once every assigned partition is applied to its end.
    pub fn caught_up(&self) -> bool {
        self.buffered() == 0 && self.input.caught_up()
    }

    pub fn has_assignment(&self) -> bool {
        self.input.has_assignment()
    }

    /// Refreshes the lag gauges, at most every few seconds (each is a broker round trip).
    pub fn observe_lag(&mut self, metrics: &Metrics) {
        if self
            .last_lag_check
            .is_some_and(|t| t.elapsed() < Duration::from_secs(5))
        {
            return;
        }
        self.last_lag_check = Some(Instant::now());
        metrics.kafka_lag.reset();
        let (mut partitions, mut total) = (0, 0);
        for (topic, partition, lag) in self.input.lag() {
            metrics
                .kafka_lag
                .with_label_values(&[&topic, &partition.to_string()])
                .set(lag);
            partitions += 1;
            total += lag.max(0);
        }
        metrics.kafka_assigned.set(partitions);
        metrics.kafka_lag_total.set(total);
    }

    /// Whether it is time to look at the sinks' backlog again (every two seconds).
    pub fn throttle_due(&mut self) -> bool {
        let due = self
            .last_throttle_check
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(2));
        if due {
            self.last_throttle_check = Some(Instant::now());
        }
        due
    }

    /// Pauses fetching while the sinks have more than the allowed backlog, resumes after.
    pub fn throttle(&mut self, backlog: u64, metrics: &Metrics) {
        self.backlog_pause = backlog > self.max_backlog;
        metrics.kafka_paused.set(i64::from(self.backlog_pause));
    }
}

fn item(source: &str, m: &KafkaMessage, position: String, outcome: Outcome) -> Item {
    Item {
        source: source.to_string(),
        file: partition_label(&m.topic, m.partition),
        index: m.offset as u64,
        position,
        raw: m
            .payload
            .as_deref()
            .map(reconlight_formats::registry::clip)
            .unwrap_or_default(),
        outcome,
        inbox_id: None,
        partial: false,
        content_key: None,
        completes: None,
        line_end: None,
    }
}

/// One message's items: one record for line formats, a document's entries for statements.
fn message_items(
    config: &Config,
    source: &SourceConfig,
    m: &KafkaMessage,
    notes: &mut SourceNotes,
) -> Vec<Item> {
    let here = format!("offset {}", m.offset);
    let Some(payload) = &m.payload else {
        return vec![item(&source.name, m, here, Outcome::Skip("tombstone"))];
    };
    let label = partition_label(&m.topic, m.partition);
    let mut decoded = source
        .format
        .decode_message(payload, &source.format_options());
    // Positions within the message follow its offset: `offset 17 transaction 3 (REF)`.
    for it in &mut decoded.items {
        it.position = if it.position.is_empty() {
            here.clone()
        } else {
            format!("{here} {}", it.position)
        };
        if let reconlight_formats::Outcome::Error(e) = &mut it.outcome {
            e.position = it.position.clone();
        }
    }
    let mut items = items_of(config, source, &label, decoded, 0, notes);
    if items.is_empty() {
        return vec![item(
            &source.name,
            m,
            here,
            Outcome::Skip("statement without entries"),
        )];
    }
    let last = items.len() - 1;
    for (i, it) in items.iter_mut().enumerate() {
        it.index = m.offset as u64;
        it.partial = i < last;
    }
    items
}
