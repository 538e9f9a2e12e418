//! Debezium JSON change events, with or without the JsonConverter schema envelope.
//!
//! Values are typed by the schema where the message carries one. Without a schema, numbers
//! and strings stay as they are, except the columns configured as decimals, whose encoding
//! follows `decimal.handling.mode` (`precise`: base64 two's-complement unscaled integer with
//! a configured scale; `string`; `double`, which is lossy at the source).

use crate::error::{ValueError, invalid};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::str::FromStr;

use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value as Json;
use serde_json::value::RawValue;

use crate::model::{ChangeOp, Row, RowChange, Value};

/// How the connector encoded DECIMAL/NUMERIC columns (`decimal.handling.mode`).
#[derive(schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecimalHandling {
    #[default]
    Precise,
    String,
    /// Accepted, but the connector has already rounded the value to a binary double.
    Double,
}

/// Options for messages that carry no schema.
#[derive(schemars::JsonSchema, Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebeziumOptions {
    /// The connector's `decimal.handling.mode`.
    #[serde(default)]
    pub decimal_handling: DecimalHandling,
    /// Decimal columns and their scale, keyed `table.column` (or `schema.table.column`);
    /// needed only when the messages carry no schema.
    #[serde(default)]
    pub decimal_columns: BTreeMap<String, u32>,
}

/// One decoded line of a Debezium stream.
#[derive(Clone, Debug, PartialEq)]
pub enum DebeziumMessage {
    Change(RowChange),
    /// A Kafka tombstone (null value) following a delete: it carries nothing to apply.
    Tombstone,
    /// Transaction BEGIN/END metadata, heartbeats and logical messages: nothing to apply.
    Ignored(&'static str),
}

/// Decodes one Debezium message (a Kafka value, or one line of a JSON-lines file).
pub fn decode(text: &str, options: &DebeziumOptions) -> Result<DebeziumMessage, ValueError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed == "null" {
        return Ok(DebeziumMessage::Tombstone);
    }
    let (schema, doc) = envelope(trimmed)?;
    let payload = &doc;
    if payload.is_null() {
        return Ok(DebeziumMessage::Tombstone);
    }
    let obj = payload
        .as_object()
        .ok_or("the payload must be a JSON object")?;
    if obj.contains_key("status") && obj.contains_key("id") && !obj.contains_key("op") {
        return Ok(DebeziumMessage::Ignored("transaction metadata"));
    }
    let op = match obj.get("op").and_then(Json::as_str) {
        Some("c") => ChangeOp::Create,
        Some("u") => ChangeOp::Update,
        Some("d") => ChangeOp::Delete,
        Some("r") => ChangeOp::Read,
        Some("t") => ChangeOp::Truncate,
        Some("m") => return Ok(DebeziumMessage::Ignored("logical decoding message")),
        Some(other) => return Err(invalid!("unknown op `{other}`")),
        None => return Err("missing `op`".into()),
    };
    let source = obj.get("source").and_then(Json::as_object);
    let table = source
        .and_then(|s| {
            let table = s.get("table").and_then(Json::as_str)?;
            let ns = s
                .get("schema")
                .and_then(Json::as_str)
                .or_else(|| s.get("db").and_then(Json::as_str));
            Some(match ns {
                Some(ns) => format!("{ns}.{table}"),
                None => table.to_string(),
            })
        })
        .ok_or("missing `source.table`: cannot tell which table changed")?;
    let source_time = event_time(obj, source)?;

    let field_schemas = |name: &str| schema.as_ref().and_then(|s| s.rows.get(name)?.as_ref());
    let decode_row = |name: &str| -> Result<Option<Row>, ValueError> {
        match obj.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Object(cols)) => {
                let schemas = field_schemas(name);
                let mut row = Row::new();
                for (col, v) in cols {
                    let value = match schemas.and_then(|s| s.get(col)) {
                        Some(fs) => decode_typed(v, fs),
                        None => decode_untyped(v, &table, col, options),
                    }
                    .map_err(|e| invalid!("`{name}.{col}`: {e}"))?;
                    row.insert(col.clone(), value);
                }
                Ok(Some(row))
            }
            Some(_) => Err(invalid!("`{name}` must be an object or null")),
        }
    };
    let before = decode_row("before")?;
    let after = decode_row("after")?;
    match op {
        ChangeOp::Create | ChangeOp::Read | ChangeOp::Update if after.is_none() => {
            return Err(invalid!("op `{}` without an `after` image", op_code(op)));
        }
        ChangeOp::Delete if before.is_none() => {
            return Err(
                "delete without a `before` image (set REPLICA IDENTITY to at least DEFAULT)".into(),
            );
        }
        _ => {}
    }
    Ok(DebeziumMessage::Change(RowChange {
        table,
        op,
        before,
        after,
        source_time,
    }))
}

/// Splits a message into its schema and its payload (the whole message when it carries no
/// JsonConverter envelope). The envelope's schema is the same in every message of a table
/// and four fifths of its bytes: it is parsed once per distinct text (`parsed_schema`) and
/// only the payload is parsed per message.
fn envelope(text: &str) -> Result<(Option<Rc<Schema>>, Json), ValueError> {
    let top: HashMap<Cow<'_, str>, &RawValue> = match serde_json::from_str(text) {
        Ok(top) => top,
        // Not JSON, or not an object: the full parse says which.
        Err(_) => {
            let doc: Json = serde_json::from_str(text).map_err(|e| invalid!("not JSON: {e}"))?;
            return match (doc.get("schema"), doc.get("payload")) {
                _ if !doc.is_object() => Err("a change event must be a JSON object".into()),
                (Some(schema), Some(payload)) => {
                    Ok((Some(parsed_schema(&schema.to_string())?), payload.clone()))
                }
                _ => Ok((None, doc)),
            };
        }
    };
    let parse = |raw: &RawValue| -> Result<Json, ValueError> {
        serde_json::from_str(raw.get()).map_err(|e| invalid!("not JSON: {e}"))
    };
    if let (Some(schema), Some(payload)) = (top.get("schema"), top.get("payload")) {
        return Ok((Some(parsed_schema(schema.get())?), parse(payload)?));
    }
    let mut doc = serde_json::Map::new();
    for (key, raw) in top {
        doc.insert(key.into_owned(), parse(raw)?);
    }
    Ok((None, Json::Object(doc)))
}

/// The column schemas of an envelope's row images (`before`, `after`), by column name.
struct Schema {
    /// `None`: the row image's entry carries no `fields` list.
    rows: BTreeMap<String, Option<BTreeMap<String, FieldSchema>>>,
}

/// How many distinct schemas a thread keeps parsed: one per table and schema version read.
const PARSED_SCHEMAS: usize = 64;

thread_local! {
    static SCHEMAS: RefCell<HashMap<Box<str>, Rc<Schema>>> = RefCell::new(HashMap::new());
}

fn parsed_schema(text: &str) -> Result<Rc<Schema>, ValueError> {
    if let Some(found) = SCHEMAS.with(|s| s.borrow().get(text).cloned()) {
        return Ok(found);
    }
    let doc: Json = serde_json::from_str(text).map_err(|e| invalid!("not JSON: {e}"))?;
    let mut rows = BTreeMap::new();
    for row in doc
        .get("fields")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = row.get("field").and_then(Json::as_str) else {
            continue;
        };
        // The first entry of a name is the one read, as a lookup by name would find it.
        rows.entry(name.to_string()).or_insert_with(|| {
            let cols = row.get("fields")?.as_array()?;
            Some(
                cols.iter()
                    .filter_map(|c| FieldSchema::deserialize(c).ok())
                    .map(|f| (f.field.clone(), f))
                    .collect(),
            )
        });
    }
    let schema = Rc::new(Schema { rows });
    SCHEMAS.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() >= PARSED_SCHEMAS {
            s.clear();
        }
        s.insert(text.into(), schema.clone());
    });
    Ok(schema)
}

fn op_code(op: ChangeOp) -> &'static str {
    match op {
        ChangeOp::Create => "c",
        ChangeOp::Update => "u",
        ChangeOp::Delete => "d",
        ChangeOp::Read => "r",
        ChangeOp::Truncate => "t",
    }
}

/// When the change happened in the database: `source.ts_ms` (or its finer siblings), falling
/// back to the connector's processing time (`ts_ms`/`ts_us`/`ts_ns`) for snapshots that carry 0.
fn event_time(
    payload: &serde_json::Map<String, Json>,
    source: Option<&serde_json::Map<String, Json>>,
) -> Result<DateTime<Utc>, ValueError> {
    let pick = |m: &serde_json::Map<String, Json>| -> Option<DateTime<Utc>> {
        if let Some(ns) = m.get("ts_ns").and_then(Json::as_i64).filter(|v| *v > 0) {
            return Some(DateTime::from_timestamp_nanos(ns));
        }
        if let Some(us) = m.get("ts_us").and_then(Json::as_i64).filter(|v| *v > 0) {
            return DateTime::from_timestamp_micros(us);
        }
        m.get("ts_ms")
            .and_then(Json::as_i64)
            .filter(|v| *v > 0)
            .and_then(DateTime::from_timestamp_millis)
    };
    source
        .and_then(pick)
        .or_else(|| pick(payload))
        .ok_or_else(|| "missing `source.ts_ms` and `ts_ms`: the change has no time".into())
}

#[derive(Debug, Clone, Deserialize)]
struct FieldSchema {
    field: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    parameters: BTreeMap<String, Json>,
}

fn decode_typed(v: &Json, fs: &FieldSchema) -> Result<Value, ValueError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let int = || {
        v.as_i64()
            .ok_or_else(|| invalid!("expected an integer, got {v}"))
    };
    let text = || {
        v.as_str()
            .ok_or_else(|| invalid!("expected a string, got {v}"))
    };
    match fs.name.as_deref() {
        Some("org.apache.kafka.connect.data.Decimal") => {
            let scale = fs
                .parameters
                .get("scale")
                .and_then(|s| {
                    s.as_str()
                        .map(str::to_owned)
                        .or_else(|| s.as_i64().map(|n| n.to_string()))
                })
                .ok_or("Decimal schema without a `scale` parameter")?
                .parse::<u32>()
                .map_err(|e| invalid!("bad Decimal scale: {e}"))?;
            return match v {
                Json::String(s) => decode_base64_decimal(s, scale),
                Json::Number(_) => decimal_from_number(v),
                _ => Err(invalid!("expected a base64 decimal, got {v}")),
            };
        }
        Some("io.debezium.data.VariableScaleDecimal") => return decode_variable_scale(v),
        Some("io.debezium.time.Date") | Some("org.apache.kafka.connect.data.Date") => {
            let days = int()?;
            return days
                .checked_add(719_163)
                .and_then(|d| i32::try_from(d).ok())
                .and_then(NaiveDate::from_num_days_from_ce_opt)
                .map(Value::Date)
                .ok_or_else(|| invalid!("date {days} days from the epoch is out of range"));
        }
        Some("io.debezium.time.Time") | Some("org.apache.kafka.connect.data.Time") => {
            return time_of_day(int()?, 1_000_000);
        }
        Some("io.debezium.time.MicroTime") => return time_of_day(int()?, 1_000),
        Some("io.debezium.time.NanoTime") => return time_of_day(int()?, 1),
        Some("io.debezium.time.ZonedTime") => {
            let s = text()?;
            let t = s.trim_end_matches('Z');
            return NaiveTime::parse_from_str(t, "%H:%M:%S%.f")
                .map(Value::Time)
                .map_err(|e| invalid!("bad ZonedTime `{s}`: {e}"));
        }
        Some("io.debezium.time.Timestamp") | Some("org.apache.kafka.connect.data.Timestamp") => {
            return timestamp_from_int(int()?, 1_000_000);
        }
        Some("io.debezium.time.MicroTimestamp") => return timestamp_from_int(int()?, 1_000),
        Some("io.debezium.time.NanoTimestamp") => return timestamp_from_int(int()?, 1),
        Some("io.debezium.time.ZonedTimestamp") => {
            let s = text()?;
            return parse_timestamp(s).map(Value::Timestamp);
        }
        _ => {}
    }
    match fs.kind.as_str() {
        "int8" | "int16" | "int32" | "int64" => int().map(Value::Int),
        "float" | "float32" | "float64" | "double" => v
            .as_f64()
            .map(Value::Float)
            .ok_or_else(|| invalid!("expected a number, got {v}")),
        "boolean" => v
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| invalid!("expected a boolean, got {v}")),
        "string" => text().map(|s| Value::Text(s.to_string())),
        "bytes" => base64::engine::general_purpose::STANDARD
            .decode(text()?)
            .map(Value::Bytes)
            .map_err(|e| invalid!("bad base64 bytes: {e}")),
        _ => Ok(Value::Json(v.clone())),
    }
}

fn decode_untyped(
    v: &Json,
    table: &str,
    col: &str,
    options: &DebeziumOptions,
) -> Result<Value, ValueError> {
    let bare_table = table.rsplit('.').next().unwrap_or(table);
    let scale = options
        .decimal_columns
        .get(&format!("{table}.{col}"))
        .or_else(|| options.decimal_columns.get(&format!("{bare_table}.{col}")))
        .copied();
    match v {
        Json::Null => Ok(Value::Null),
        Json::Bool(b) => Ok(Value::Bool(*b)),
        Json::Number(n) => match (n.as_i64(), scale) {
            (Some(i), None) => Ok(Value::Int(i)),
            (_, Some(_)) => decimal_from_number(v),
            (None, None) => Ok(Value::Float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Json::String(s) => match (scale, options.decimal_handling) {
            (Some(scale), DecimalHandling::Precise) => decode_base64_decimal(s, scale),
            (Some(_), _) => Decimal::from_str(s.trim())
                .map(Value::Decimal)
                .map_err(|e| invalid!("bad decimal string `{s}`: {e}")),
            (None, _) => Ok(Value::Text(s.clone())),
        },
        Json::Object(o) if o.contains_key("scale") && o.contains_key("value") && o.len() == 2 => {
            decode_variable_scale(v)
        }
        other => Ok(Value::Json(other.clone())),
    }
}

/// A decimal sent as a JSON number (`decimal.handling.mode=double`, or a schema-less
/// converter). serde_json keeps the number's text as written (`arbitrary_precision`), so
/// every digit is read exactly; a value beyond 28 significant digits stays its digits, as
/// text, for whoever needs it to say so.
fn decimal_from_number(v: &Json) -> Result<Value, ValueError> {
    let text = v.to_string();
    if let Ok(d) = Decimal::from_str(&text) {
        return Ok(Value::Decimal(d));
    }
    match Decimal::from_scientific(&text) {
        Ok(d) if d.to_string().len() <= text.len() + 30 => Ok(Value::Decimal(d)),
        _ if text
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-') =>
        {
            Ok(Value::Text(text))
        }
        _ => Err(invalid!("decimal number {text} is out of range")),
    }
}

fn decode_variable_scale(v: &Json) -> Result<Value, ValueError> {
    let scale = v
        .get("scale")
        .and_then(Json::as_u64)
        .ok_or("VariableScaleDecimal without an integer `scale`")?;
    let value = v
        .get("value")
        .and_then(Json::as_str)
        .ok_or("VariableScaleDecimal without a base64 `value`")?;
    decode_base64_decimal(value, scale as u32)
}

/// Decodes the `precise` encoding: base64 of a big-endian two's-complement unscaled integer.
pub fn decode_base64_decimal(text: &str, scale: u32) -> Result<Value, ValueError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| invalid!("`{text}` is not a base64 decimal: {e}"))?;
    if bytes.is_empty() {
        return Err(invalid!("base64 decimal `{text}` has no bytes"));
    }
    if bytes.len() <= 16 {
        let negative = bytes[0] & 0x80 != 0;
        let mut buf = if negative { [0xffu8; 16] } else { [0u8; 16] };
        buf[16 - bytes.len()..].copy_from_slice(&bytes);
        let unscaled = i128::from_be_bytes(buf);
        if let Ok(d) = Decimal::try_from_i128_with_scale(unscaled, scale) {
            return Ok(Value::Decimal(d));
        }
    }
    // Beyond what a 28-digit decimal holds: keep the exact digits as text.
    Ok(Value::Text(big_decimal_text(&bytes, scale)))
}

/// The decimal digits of a big-endian two's-complement integer of any length, with `scale`
/// digits after the point.
fn big_decimal_text(bytes: &[u8], scale: u32) -> String {
    let negative = bytes[0] & 0x80 != 0;
    // Magnitude: two's complement undone (invert and add one) for negative values.
    let mut magnitude: Vec<u8> = if negative {
        let mut m: Vec<u8> = bytes.iter().map(|b| !b).collect();
        for b in m.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
        m
    } else {
        bytes.to_vec()
    };
    let mut digits = Vec::new();
    while magnitude.iter().any(|b| *b != 0) {
        let mut rem = 0u32;
        for b in magnitude.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    while digits.len() <= scale as usize {
        digits.push(b'0');
    }
    digits.reverse();
    let mut text = String::from_utf8(digits).expect("ASCII digits");
    if scale > 0 {
        text.insert(text.len() - scale as usize, '.');
    }
    if negative {
        text.insert(0, '-');
    }
    text
}

/// A time of day given in units of `nanos_per_unit` nanoseconds since midnight.
fn time_of_day(v: i64, nanos_per_unit: i64) -> Result<Value, ValueError> {
    let out_of_range = || invalid!("time of day {v} is out of range");
    let nanos = v.checked_mul(nanos_per_unit).ok_or_else(out_of_range)?;
    let secs = u32::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| out_of_range())?;
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, frac)
        .map(Value::Time)
        .ok_or_else(out_of_range)
}

fn timestamp_from_int(v: i64, nanos_per_unit: i64) -> Result<Value, ValueError> {
    v.checked_mul(nanos_per_unit)
        .map(|ns| Value::Timestamp(DateTime::from_timestamp_nanos(ns)))
        .ok_or_else(|| invalid!("timestamp {v} is out of range"))
}

/// Parses an ISO-8601 timestamp with an offset (`2026-10-05T08:12:33.123456Z`), or without
/// one, read as UTC.
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, ValueError> {
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
            return Ok(dt.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(dt.and_utc());
        }
    }
    Err(invalid!("`{t}` is not an ISO-8601 timestamp"))
}
