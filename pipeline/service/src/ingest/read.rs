//! Reading what the sources hold beyond the stored positions: files, drop folders and the webhook inbox, with their statements' balance verdicts.

use super::pipeline::*;
use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use super::source::{
    Dropped, Item, Merged, Outcome, Pending, Queue, SourceNotes, StatementNote, items_of,
    read_dropped, read_file, source_files,
};
use reconlight_core::outbox::OutboxMessage;
use reconlight_core::state::{DeadLetter, Dirty};

impl Pipeline {
    /// Reads everything the sources hold beyond the stored positions.
    pub async fn pending_items(&mut self, stats: &mut RunStats) -> crate::error::Result<Merged> {
        let mut queues = Vec::new();
        let mut dropped = Vec::new();
        let mut found_notes = Vec::new();
        for source in &self.config.sources {
            let mut q: Vec<Pending> = Vec::new();
            let mut notes = SourceNotes::default();
            for path in source_files(&self.config, source)? {
                if source.drop_folder {
                    match read_dropped(
                        &self.config,
                        source,
                        &path,
                        &self.state.positions,
                        &mut notes,
                    )? {
                        Dropped::Settling => {
                            tracing::debug!(
                                "{} changed too recently: read next round",
                                path.display()
                            );
                        }
                        Dropped::Vanished => {
                            tracing::warn!("{} vanished before it could be read", path.display());
                        }
                        Dropped::Read { items, failed } => {
                            dropped.push((path.clone(), failed));
                            q.push(Pending {
                                count: items.len(),
                                items: Box::new(items.into_iter()),
                                consumed: None,
                            });
                        }
                    }
                    continue;
                }
                match read_file(
                    &self.config,
                    source,
                    &path,
                    &self.state.positions,
                    &mut notes,
                ) {
                    Ok(mut pending) => {
                        self.consumed_documents.extend(pending.consumed.take());
                        q.push(pending);
                    }
                    // Listed a moment ago, gone now: somebody moved it; nothing to read.
                    Err(_) if !path.exists() => {
                        tracing::warn!("{} vanished before it could be read", path.display());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            found_notes.extend(notes.notes.into_iter().map(|n| (source.name.clone(), n)));
            queues.push(Queue::new(q));
        }
        for (source, n) in found_notes {
            self.note_statement(&source, n, stats);
        }
        let inbox = self.inbox_items().await?;
        queues.push(Queue::new(vec![Pending {
            count: inbox.len(),
            items: Box::new(inbox.into_iter()),
            consumed: None,
        }]));
        let mut merged = Merged::new(queues);
        merged.dropped = dropped;
        Ok(merged)
    }

    /// A statement that does not balance is counted and reported; one whose balance could
    /// not be checked is also a dead letter, so the gap is on record.
    pub(super) fn note_statement(
        &mut self,
        source: &str,
        note: StatementNote,
        stats: &mut RunStats,
    ) {
        match note {
            StatementNote::Unbalanced(note) => {
                tracing::warn!("{note}");
                self.metrics
                    .unbalanced_statements
                    .with_label_values(&[source])
                    .inc();
                stats.unbalanced_statements.push(note);
            }
            StatementNote::Unchecked(note) => {
                tracing::warn!("{note}");
                self.metrics
                    .dead_letters
                    .with_label_values(&[source, "statement"])
                    .inc();
                stats.unchecked_statements.push(note.clone());
                let (position, reason) = match note.split_once(": ") {
                    Some((file, reason)) => (format!("{file} balances"), reason.to_string()),
                    None => ("balances".to_string(), note),
                };
                self.pending_letters.push(DeadLetter {
                    source: source.to_string(),
                    position,
                    reason,
                    raw: String::new(),
                    recorded_at: self.state.watermark.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                });
            }
        }
    }

    /// Webhook bodies received since the last batch, decoded like the provider's file lines.
    pub(super) async fn inbox_items(&self) -> crate::error::Result<VecDeque<Item>> {
        let hooks = &self.config.webhooks;
        let mut q = VecDeque::new();
        for (id, provider, body) in self.store.inbox_pending(100_000).await? {
            let format: reconlight_formats::Format = provider.parse()?;
            let source = crate::config::SourceConfig::webhook(format, hooks);
            let decoded = format.decode_message(body.as_bytes(), &source.format_options());
            let mut notes = SourceNotes::default();
            for mut item in items_of(&self.config, &source, "inbox", decoded, 0, &mut notes) {
                item.position = id.clone();
                if let Outcome::Error(e) = &mut item.outcome {
                    *e = format!("{provider} webhook: {e}");
                }
                item.inbox_id = Some(id.clone());
                q.push_back(item);
            }
        }
        Ok(q)
    }

    /// Puts what reading found into the next commit: dead letters, and the digests of
    /// documents consumed to their end.
    pub(super) fn take_found_while_reading(&mut self, dirty: &mut Dirty, stats: &mut RunStats) {
        for (key, digest) in std::mem::take(&mut self.consumed_documents) {
            self.state.positions.insert(key.clone(), digest);
            dirty.positions.insert(key);
        }
        for letter in std::mem::take(&mut self.pending_letters) {
            stats.dead_letters += 1;
            self.state.dead_letter_count += 1;
            dirty.outbox.push(OutboxMessage::new(
                "dead_letters",
                &letter.position,
                &letter,
                letter.recorded_at,
            ));
            dirty.dead_letters.push(letter);
        }
    }
}
