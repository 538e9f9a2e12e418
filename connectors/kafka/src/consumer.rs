//! The consumer: one group over the configured topics, positions from the store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

/// One consumed message.
#[derive(Clone, Debug)]
pub struct KafkaMessage {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
}

type Positions = Arc<Mutex<HashMap<(String, i32), i64>>>;

/// Seeks assigned partitions to the store's positions; remembers revocations so the batch
/// being collected drops what is no longer this member's.
struct PositionContext {
    positions: Positions,
    revoked: Arc<Mutex<BTreeSet<(String, i32)>>>,
    assigned: Arc<Mutex<BTreeSet<(String, i32)>>>,
    rebalanced: Arc<std::sync::atomic::AtomicBool>,
}

impl ClientContext for PositionContext {}

impl ConsumerContext for PositionContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                tracing::debug!("kafka: assigned {} partitions", tpl.count());
                let positions = self.positions.lock().expect("positions");
                let mut assigned = self.assigned.lock().expect("assigned");
                for e in tpl.elements() {
                    assigned.insert((e.topic().to_string(), e.partition()));
                }
                let parts: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                for (topic, partition) in parts {
                    // The store is the record of what was applied: a partition it has never
                    // seen is read from its beginning, whatever the group committed.
                    let offset = match positions.get(&(topic.clone(), partition)) {
                        Some(next) => Offset::Offset(*next),
                        None => Offset::Beginning,
                    };
                    if let Err(e) = tpl.set_partition_offset(&topic, partition, offset) {
                        tracing::error!("kafka: seeking {topic}/{partition}: {e}");
                    }
                }
                self.rebalanced
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!("kafka: assigning partitions failed: {e}");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let mut revoked = self.revoked.lock().expect("revoked");
                let mut assigned = self.assigned.lock().expect("assigned");
                for e in tpl.elements() {
                    let p = (e.topic().to_string(), e.partition());
                    assigned.remove(&p);
                    revoked.insert(p);
                }
                if let Err(e) = consumer.unassign() {
                    tracing::error!("kafka: unassigning partitions failed: {e}");
                }
            }
            other => tracing::error!("kafka: rebalance error {other:?}"),
        }
    }
}

/// A consumer group member reading the configured topics.
pub struct KafkaInput {
    consumer: BaseConsumer<PositionContext>,
    positions: Positions,
    revoked: Arc<Mutex<BTreeSet<(String, i32)>>>,
    assigned: Arc<Mutex<BTreeSet<(String, i32)>>>,
    rebalanced: Arc<std::sync::atomic::AtomicBool>,
    /// Partitions revoked since the caller last asked (`take_revoked`).
    revoked_since: Mutex<BTreeSet<(String, i32)>>,
    paused: Mutex<BTreeSet<(String, i32)>>,
    last_watermark_query: Mutex<Option<Instant>>,
}

impl KafkaInput {
    /// Joins `group` on `topics`; `positions` are the next offsets the store holds.
    pub fn new(
        brokers: &str,
        group: &str,
        topics: &[String],
        properties: &BTreeMap<String, String>,
        positions: HashMap<(String, i32), i64>,
    ) -> KafkaResult<Self> {
        let positions = Arc::new(Mutex::new(positions));
        let revoked = Arc::new(Mutex::new(BTreeSet::new()));
        let assigned = Arc::new(Mutex::new(BTreeSet::new()));
        let rebalanced = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut config = super::client_config(brokers, properties);
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        super::set_default(&mut config, "auto.offset.reset", "earliest");
        // librdkafka buffers at most this much ahead of the pipeline.
        super::set_default(&mut config, "queued.max.messages.kbytes", "16384");
        let consumer: BaseConsumer<PositionContext> =
            config.create_with_context(PositionContext {
                positions: positions.clone(),
                revoked: revoked.clone(),
                assigned: assigned.clone(),
                rebalanced: rebalanced.clone(),
            })?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names)?;
        Ok(KafkaInput {
            consumer,
            positions,
            revoked,
            assigned,
            rebalanced,
            revoked_since: Mutex::new(BTreeSet::new()),
            paused: Mutex::new(BTreeSet::new()),
            last_watermark_query: Mutex::new(None),
        })
    }

    /// Up to `max` messages, waiting at most `wait` for the first. Rebalances run only
    /// inside this call, so the batch in hand is always applied and committed before its
    /// partitions are given up; messages collected here from a partition revoked meanwhile
    /// are dropped, as its next owner reads them from the store's positions.
    pub fn poll_batch(&self, max: usize, wait: Duration) -> KafkaResult<Vec<KafkaMessage>> {
        let mut out = Vec::new();
        let deadline = Instant::now() + wait;
        while out.len() < max {
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = if out.is_empty() {
                left
            } else {
                left.min(Duration::from_millis(20))
            };
            let polled = self.consumer.poll(timeout);
            self.drop_revoked(&mut out);
            match polled {
                Some(Ok(m)) => out.push(KafkaMessage {
                    topic: m.topic().to_string(),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().map(<[u8]>::to_vec),
                }),
                Some(Err(e)) => {
                    // Transient broker errors: librdkafka retries; the batch goes on.
                    tracing::warn!("kafka: {e}");
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                None => {
                    if Instant::now() >= deadline || !out.is_empty() {
                        break;
                    }
                }
            }
        }
        self.drop_revoked(&mut out);
        Ok(out)
    }

    fn drop_revoked(&self, out: &mut Vec<KafkaMessage>) {
        let mut revoked = self.revoked.lock().expect("revoked");
        if !revoked.is_empty() {
            out.retain(|m| !revoked.contains(&(m.topic.clone(), m.partition)));
            let mut paused = self.paused.lock().expect("paused");
            for p in revoked.iter() {
                paused.remove(p);
            }
            self.revoked_since
                .lock()
                .expect("revoked")
                .extend(revoked.iter().cloned());
            revoked.clear();
        }
    }

    /// The partitions revoked since the last call: whatever the caller buffered from them
    /// is no longer its to apply.
    pub fn take_revoked(&self) -> BTreeSet<(String, i32)> {
        std::mem::take(&mut *self.revoked_since.lock().expect("revoked"))
    }

    /// The partitions this member holds now.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.assigned
            .lock()
            .expect("assigned")
            .iter()
            .cloned()
            .collect()
    }

    /// The end (high watermark) of a partition as last reported by a fetch, without asking
    /// the broker; `None` before the first fetch.
    pub fn cached_end(&self, topic: &str, partition: i32) -> Option<i64> {
        let topic = std::ffi::CString::new(topic).ok()?;
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: the client pointer is valid for the consumer's lifetime, the topic is a
        // NUL-terminated string that outlives the call, and librdkafka only writes the two
        // integers (rust-rdkafka wraps the broker query but not this cached lookup).
        let err = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                self.consumer.client().native_ptr(),
                topic.as_ptr(),
                partition,
                &mut low,
                &mut high,
            )
        };
        (err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
    }

    /// The next offset of each assigned partition after what was handed over: past the last
    /// message polled and the transaction markers after it, which are never handed over.
    pub fn read_positions(&self) -> HashMap<(String, i32), i64> {
        self.consumer
            .position()
            .map(|tpl| {
                tpl.elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// True once the group has assigned this member its partitions (possibly none).
    pub fn has_assignment(&self) -> bool {
        self.rebalanced.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// After the store committed the batch: remember the positions and tell Kafka.
    pub fn committed(&self, next_offsets: &[(String, i32, i64)]) -> KafkaResult<()> {
        if next_offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        let mut positions = self.positions.lock().expect("positions");
        for (topic, partition, next) in next_offsets {
            positions.insert((topic.clone(), *partition), *next);
            if self
                .assigned
                .lock()
                .expect("assigned")
                .contains(&(topic.clone(), *partition))
            {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
            }
        }
        drop(positions);
        if tpl.count() == 0 {
            return Ok(());
        }
        match self.consumer.commit(&tpl, CommitMode::Async) {
            // Nothing changed since the last commit: not a failure.
            Err(rdkafka::error::KafkaError::ConsumerCommit(
                rdkafka::types::RDKafkaErrorCode::NoOffset,
            )) => Ok(()),
            other => other,
        }
    }

    /// Fetches only the assigned partitions not in `pause`: the others stop until a later
    /// call leaves them out, so nothing is buffered without bound while downstream is slow.
    pub fn set_paused(&self, pause: &BTreeSet<(String, i32)>) -> KafkaResult<()> {
        let mut paused = self.paused.lock().expect("paused");
        let assigned = self.assigned.lock().expect("assigned").clone();
        let want: BTreeSet<(String, i32)> = pause.intersection(&assigned).cloned().collect();
        let list = |parts: Vec<&(String, i32)>| -> KafkaResult<TopicPartitionList> {
            let mut tpl = TopicPartitionList::new();
            for (t, p) in parts {
                tpl.add_partition(t, *p);
            }
            Ok(tpl)
        };
        let to_pause: Vec<_> = want.difference(&paused).collect();
        if !to_pause.is_empty() {
            self.consumer.pause(&list(to_pause)?)?;
        }
        let to_resume: Vec<_> = paused
            .difference(&want)
            .filter(|p| assigned.contains(p))
            .collect();
        if !to_resume.is_empty() {
            self.consumer.resume(&list(to_resume)?)?;
        }
        *paused = want;
        Ok(())
    }

    /// (topic, partition, high watermark - position) of every assigned partition, where the
    /// position is the store's, or past what the consumer handed over when that is further
    /// (offsets taken by transaction markers). The high watermarks are the ones the fetches
    /// report; only a partition without one, or that still looks behind, is asked of the
    /// broker (a round trip each, so at most every few seconds).
    pub fn lag(&self) -> Vec<(String, i32, i64)> {
        let assigned: Vec<(String, i32)> = self
            .assigned
            .lock()
            .expect("assigned")
            .iter()
            .cloned()
            .collect();
        let positions = self.positions.lock().expect("positions").clone();
        let read = self.read_positions();
        let mut last_query = self.last_watermark_query.lock().expect("query");
        let may_query = last_query.is_none_or(|t| t.elapsed() >= WATERMARK_QUERY_INTERVAL);
        let mut queried = false;
        let lag = assigned
            .into_iter()
            .filter_map(|(t, p)| {
                let key = (t.clone(), p);
                let at = match (positions.get(&key), read.get(&key)) {
                    (Some(a), Some(b)) => Some(*a.max(b)),
                    (a, b) => a.or(b).copied(),
                };
                let behind = |low: i64, high: i64| (high - at.unwrap_or(low).max(low)).max(0);
                let cached = self.cached_end(&t, p).map(|high| behind(0, high));
                // Caught up by the fetches' account, or not to be asked again yet.
                if cached == Some(0) || !may_query {
                    return cached.map(|lag| (t, p, lag));
                }
                queried = true;
                let (low, high) = self
                    .consumer
                    .fetch_watermarks(&t, p, Duration::from_secs(5))
                    .ok()?;
                Some((t, p, behind(low, high)))
            })
            .collect();
        if queried {
            *last_query = Some(Instant::now());
        }
        lag
    }

    /// True once partitions are assigned and every one is applied up to its high watermark.
    pub fn caught_up(&self) -> bool {
        if !self.has_assignment() {
            return false;
        }
        let assigned = self.assigned.lock().expect("assigned").len();
        let lag = self.lag();
        lag.len() == assigned && lag.iter().all(|(_, _, l)| *l == 0)
    }
}

/// How often partitions that look behind by the fetches' watermarks are checked with the
/// broker (messages deleted by retention, or a partition not fetched yet).
const WATERMARK_QUERY_INTERVAL: Duration = Duration::from_secs(5);
