//! Reading a whole table of documents (a start reads every live table): the database joins
//! a few thousand documents into one JSON array per round trip, parsed on a blocking thread
//! while the next chunk is read. Read row by row, each document was copied twice on its way
//! through sqlx (an eighth of a start's samples at 50,000 contracts).

use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tokio::task::JoinHandle;

use super::{Backend, Store, StoreError, ctx, parse_docs};

/// Documents per round trip: a megabyte or two of text.
const CHUNK_ROWS: usize = 2_000;

/// One chunk: the keys it covers (after `after`, up to `last`) and its documents.
struct Chunk<T> {
    after: Option<String>,
    last: String,
    parsed: Parsed<T>,
}

enum Parsed<T> {
    /// The chunk as one JSON array, being parsed.
    Joined(JoinHandle<Result<Vec<T>, serde_json::Error>>),
    /// Read row by row: joining them failed (the database limits a text's length, a
    /// billion bytes on SQLite).
    Rows(Vec<T>),
}

/// A table being read and parsed.
pub(super) struct TableRead<T> {
    table: &'static str,
    key: &'static str,
    condition: &'static str,
    chunks: Vec<Chunk<T>>,
}

impl Store {
    /// Reads the documents of `table` meeting `condition` (this module's constant SQL) in
    /// key order, parsing them in the background; `TableRead::finish` collects them.
    pub(super) async fn read_table<T: DeserializeOwned + Send + 'static>(
        &self,
        table: &'static str,
        key: &'static str,
        condition: &'static str,
    ) -> Result<TableRead<T>, StoreError> {
        let joined = match self.backend {
            Backend::Sqlite => "group_concat(doc, ',')",
            Backend::Postgres => "string_agg(doc, ',')",
        };
        let chunk_sql = |bounded: bool| {
            let bound = if bounded {
                format!(" AND {key} > $1")
            } else {
                String::new()
            };
            format!(
                "SELECT max({key}), '[' || {joined} || ']' FROM (SELECT {key}, doc FROM {table} \
                 WHERE ({condition}){bound} ORDER BY {key} LIMIT {CHUNK_ROWS}) AS chunk"
            )
        };
        let (first, next) = (chunk_sql(false), chunk_sql(true));
        let doing = format!("reading {table}");
        let mut read = TableRead {
            table,
            key,
            condition,
            chunks: Vec::new(),
        };
        let mut after: Option<String> = None;
        loop {
            let joined = match &after {
                None => sqlx::query(AssertSqlSafe(first.as_str())),
                Some(after) => sqlx::query(AssertSqlSafe(next.as_str())).bind(after.clone()),
            }
            .fetch_one(&self.pool)
            .await;
            let chunk = match joined {
                Ok(row) => {
                    let last: Option<String> = row.try_get(0).map_err(ctx(doing.clone()))?;
                    let Some(last) = last else {
                        break;
                    };
                    let text: String = row.try_get(1).map_err(ctx(doing.clone()))?;
                    Chunk {
                        after: after.clone(),
                        last,
                        parsed: Parsed::Joined(tokio::task::spawn_blocking(move || {
                            serde_json::from_str(&text)
                        })),
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        "{doing}: {CHUNK_ROWS} documents after {:?} could not be joined ({e}); reading them one by one",
                        after.as_deref().unwrap_or_default()
                    );
                    let rows = self
                        .chunk_rows(table, key, condition, after.as_deref(), None)
                        .await?;
                    let Some(last) = rows.last() else {
                        break;
                    };
                    let last: String = last.try_get(0).map_err(ctx(doing.clone()))?;
                    Chunk {
                        after: after.clone(),
                        last,
                        parsed: Parsed::Rows(parse_docs(table, &rows)?),
                    }
                }
            };
            after = Some(chunk.last.clone());
            read.chunks.push(chunk);
        }
        Ok(read)
    }

    /// A chunk's rows one by one: the next `CHUNK_ROWS` after `after`, or those up to `last`.
    async fn chunk_rows(
        &self,
        table: &str,
        key: &str,
        condition: &str,
        after: Option<&str>,
        last: Option<&str>,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let mut sql = format!("SELECT {key}, doc FROM {table} WHERE ({condition})");
        let mut n = 0;
        let mut bound = |op: &str| {
            n += 1;
            format!(" AND {key} {op} ${n}")
        };
        if after.is_some() {
            sql += &bound(">");
        }
        if last.is_some() {
            sql += &bound("<=");
        }
        sql += &format!(" ORDER BY {key}");
        if last.is_none() {
            sql += &format!(" LIMIT {CHUNK_ROWS}");
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in after.into_iter().chain(last) {
            query = query.bind(value.to_string());
        }
        query
            .fetch_all(&self.pool)
            .await
            .map_err(ctx(format!("reading {table}")))
    }
}

impl<T: DeserializeOwned> TableRead<T> {
    /// The documents in key order. A chunk that does not parse is read again row by row,
    /// so the error names the row.
    pub(super) async fn finish(self, store: &Store) -> Result<Vec<T>, StoreError> {
        let doing = format!("reading {}", self.table);
        let mut out = Vec::new();
        for chunk in self.chunks {
            let handle = match chunk.parsed {
                Parsed::Rows(docs) => {
                    out.extend(docs);
                    continue;
                }
                Parsed::Joined(handle) => handle,
            };
            match handle.await.map_err(ctx(doing.clone()))? {
                Ok(docs) => out.extend(docs),
                Err(e) => {
                    let rows = store
                        .chunk_rows(
                            self.table,
                            self.key,
                            self.condition,
                            chunk.after.as_deref(),
                            Some(&chunk.last),
                        )
                        .await?;
                    parse_docs::<T>(self.table, &rows)?;
                    // Every row parses alone: the joined text itself was wrong.
                    return Err(ctx(format!(
                        "{doing}, rows after {:?} up to {:?}",
                        chunk.after.unwrap_or_default(),
                        chunk.last
                    ))(e));
                }
            }
        }
        Ok(out)
    }
}
