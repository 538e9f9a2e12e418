//! Debezium decoding: schema envelope and bare payloads, decimal modes, time types, ops.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveTime};
use reconlight_formats::debezium::{DebeziumMessage, DebeziumOptions, DecimalHandling, decode};
use reconlight_formats::model::{ChangeOp, Value};
use rust_decimal::Decimal;

fn change(text: &str, options: &DebeziumOptions) -> reconlight_formats::model::RowChange {
    match decode(text, options).unwrap() {
        DebeziumMessage::Change(c) => c,
        other => panic!("expected a change, got {other:?}"),
    }
}

fn dec(s: &str) -> Value {
    Value::Decimal(Decimal::from_str(s).unwrap())
}

const WITH_SCHEMA: &str = r#"{"schema":{"type":"struct","fields":[
 {"type":"struct","field":"before","optional":true,"fields":[]},
 {"type":"struct","field":"after","optional":true,"fields":[
   {"type":"string","optional":false,"field":"contract_no"},
   {"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2","connect.decimal.precision":"18"},"field":"amount"},
   {"type":"struct","optional":true,"name":"io.debezium.data.VariableScaleDecimal","field":"ratio","fields":[]},
   {"type":"int32","optional":true,"name":"io.debezium.time.Date","field":"due"},
   {"type":"int64","optional":true,"name":"io.debezium.time.MicroTimestamp","field":"created"},
   {"type":"int64","optional":true,"name":"io.debezium.time.Timestamp","field":"created_ms"},
   {"type":"int64","optional":true,"name":"io.debezium.time.NanoTimestamp","field":"created_ns"},
   {"type":"string","optional":true,"name":"io.debezium.time.ZonedTimestamp","field":"signed_at"},
   {"type":"int32","optional":true,"name":"io.debezium.time.Time","field":"t_ms"},
   {"type":"int64","optional":true,"name":"io.debezium.time.MicroTime","field":"t_us"},
   {"type":"boolean","optional":true,"field":"vip"},
   {"type":"double","optional":true,"field":"score"}]},
 {"type":"struct","field":"source","fields":[]},{"type":"string","field":"op"}]},
 "payload":{"before":null,"after":{"contract_no":"HT-2026-000123","amount":"MDk=","ratio":{"scale":3,"value":"AeJA"},
   "due":20393,"created":1761955200123456,"created_ms":1761955200123,"created_ns":1761955200123456789,
   "signed_at":"2025-11-01T00:00:00.5Z","t_ms":3723004,"t_us":3723004005,"vip":true,"score":4.25},
 "source":{"version":"2.7.3.Final","connector":"postgresql","name":"crm","ts_ms":1761955200999,"snapshot":"false","db":"crm","schema":"crm","table":"contracts","txId":7,"lsn":9},
 "op":"c","ts_ms":1761955201000}}"#;

#[test]
fn decodes_every_type_by_its_schema() {
    let c = change(WITH_SCHEMA, &DebeziumOptions::default());
    assert_eq!(c.table, "crm.contracts");
    assert_eq!(c.op, ChangeOp::Create);
    assert_eq!(c.source_time.to_rfc3339(), "2025-11-01T00:00:00.999+00:00");
    let a = c.after.unwrap();
    assert_eq!(a["contract_no"], Value::Text("HT-2026-000123".into()));
    assert_eq!(
        a["amount"],
        dec("123.45"),
        "MDk= is 0x3039 = 12345 at scale 2"
    );
    assert_eq!(
        a["ratio"],
        dec("123.456"),
        "AeJA is 0x01e240 = 123456 at scale 3"
    );
    assert_eq!(
        a["due"],
        Value::Date(NaiveDate::from_ymd_opt(2025, 11, 1).unwrap())
    );
    let ts = |v: &Value| match v {
        Value::Timestamp(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        other => panic!("{other:?}"),
    };
    assert_eq!(ts(&a["created"]), "2025-11-01T00:00:00.123456000Z");
    assert_eq!(ts(&a["created_ms"]), "2025-11-01T00:00:00.123000000Z");
    assert_eq!(ts(&a["created_ns"]), "2025-11-01T00:00:00.123456789Z");
    assert_eq!(ts(&a["signed_at"]), "2025-11-01T00:00:00.500000000Z");
    assert_eq!(
        a["t_ms"],
        Value::Time(NaiveTime::from_hms_milli_opt(1, 2, 3, 4).unwrap())
    );
    assert_eq!(
        a["t_us"],
        Value::Time(NaiveTime::from_hms_micro_opt(1, 2, 3, 4005).unwrap())
    );
    assert_eq!(a["vip"], Value::Bool(true));
    assert_eq!(a["score"], Value::Float(4.25));
}

#[test]
fn schemaless_decimals_follow_the_configured_mode() {
    let line = r#"{"before":null,"after":{"contract_no":"HT-1","amount":"AMNQ"},"source":{"ts_ms":1,"schema":"crm","table":"contracts"},"op":"r","ts_ms":1}"#;
    let precise = DebeziumOptions {
        decimal_handling: DecimalHandling::Precise,
        decimal_columns: BTreeMap::from([("contracts.amount".to_string(), 2)]),
    };
    assert_eq!(
        change(line, &precise).after.unwrap()["amount"],
        dec("500.00"),
        "AMNQ is 0x00c350 = 50000"
    );
    // Without the column declared, the text stays text: the mapping names the fix.
    assert_eq!(
        change(line, &DebeziumOptions::default()).after.unwrap()["amount"],
        Value::Text("AMNQ".into())
    );

    let string_mode = DebeziumOptions {
        decimal_handling: DecimalHandling::String,
        decimal_columns: BTreeMap::from([("crm.contracts.amount".to_string(), 2)]),
    };
    let line = line.replace("AMNQ", "1234.50");
    assert_eq!(
        change(&line, &string_mode).after.unwrap()["amount"],
        dec("1234.50")
    );
    let negative = r#"{"after":{"amount":"/4A="},"source":{"ts_ms":1,"table":"t"},"op":"c"}"#;
    let opts = DebeziumOptions {
        decimal_handling: DecimalHandling::Precise,
        decimal_columns: BTreeMap::from([("t.amount".to_string(), 2)]),
    };
    assert_eq!(
        change(negative, &opts).after.unwrap()["amount"],
        dec("-1.28")
    );
}

#[test]
fn deletes_tombstones_truncates_and_metadata() {
    let opts = DebeziumOptions::default();
    let del = change(
        r#"{"before":{"id":7},"after":null,"source":{"ts_ms":5,"db":"shop","table":"orders"},"op":"d","ts_ms":6}"#,
        &opts,
    );
    assert_eq!(
        (del.op, del.table.as_str()),
        (ChangeOp::Delete, "shop.orders")
    );
    assert_eq!(del.before.unwrap()["id"], Value::Int(7));
    assert_eq!(decode("null", &opts).unwrap(), DebeziumMessage::Tombstone);
    assert_eq!(
        decode(r#"{"schema":{"type":"struct"},"payload":null}"#, &opts).unwrap(),
        DebeziumMessage::Tombstone
    );
    let t = change(
        r#"{"before":null,"after":null,"source":{"ts_ms":5,"schema":"crm","table":"contracts"},"op":"t","ts_ms":6}"#,
        &opts,
    );
    assert_eq!(t.op, ChangeOp::Truncate);
    assert_eq!(
        decode(r#"{"status":"BEGIN","id":"571:53195829","event_count":null,"data_collections":null,"ts_ms":1}"#, &opts).unwrap(),
        DebeziumMessage::Ignored("transaction metadata")
    );
}

#[test]
fn errors_say_what_is_wrong() {
    let opts = DebeziumOptions::default();
    assert!(
        decode("{not json", &opts)
            .unwrap_err()
            .to_string()
            .starts_with("not JSON")
    );
    assert_eq!(
        decode(
            r#"{"after":{},"source":{"ts_ms":1,"table":"t"},"op":"x"}"#,
            &opts
        )
        .unwrap_err()
        .to_string(),
        "unknown op `x`"
    );
    assert_eq!(
        decode(r#"{"after":{},"source":{"ts_ms":1},"op":"c"}"#, &opts)
            .unwrap_err()
            .to_string(),
        "missing `source.table`: cannot tell which table changed"
    );
    assert!(
        decode(
            r#"{"before":null,"after":null,"source":{"ts_ms":1,"table":"t"},"op":"d"}"#,
            &opts
        )
        .unwrap_err()
        .to_string()
        .starts_with("delete without a `before` image")
    );
}

#[test]
fn each_message_is_typed_by_its_own_schema_when_a_table_changes_schema_mid_stream() {
    let opts = DebeziumOptions::default();
    // The same table and value: first with the amount at scale 2, then after a migration to
    // scale 3, then at scale 2 again (a message from another partition, read later).
    let message = |scale: &str| {
        format!(
            r#"{{"schema":{{"type":"struct","fields":[{{"type":"struct","field":"after","fields":[
              {{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{{"scale":"{scale}"}},"field":"amount"}}]}}]}},
              "payload":{{"before":null,"after":{{"amount":"MDk="}},"source":{{"ts_ms":1,"table":"contracts"}},"op":"c"}}}}"#
        )
    };
    let amount = |text: &str| change(text, &opts).after.unwrap()["amount"].clone();
    assert_eq!(amount(&message("2")), dec("123.45"));
    assert_eq!(amount(&message("3")), dec("12.345"));
    assert_eq!(amount(&message("2")), dec("123.45"));
    // An envelope whose schema is not an object types nothing: the value stays as sent.
    let untyped = r#"{"schema":null,"payload":{"before":null,"after":{"amount":"MDk="},"source":{"ts_ms":1,"table":"contracts"},"op":"c"}}"#;
    assert_eq!(amount(untyped), Value::Text("MDk=".into()));
    for not_an_object in ["[1, 2]", "17", "\"text\""] {
        assert_eq!(
            decode(not_an_object, &opts).unwrap_err().to_string(),
            "a change event must be a JSON object",
            "{not_an_object}"
        );
    }
}
