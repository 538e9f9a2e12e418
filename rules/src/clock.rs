//! `now()` and `today()` for rule SQL, answered from the pipeline clock rather than the wall
//! clock, so a replay of the same input sees the same times and raises the same alerts.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// The timestamp type of every time column the pipeline exposes, and of `now()`.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
}

/// `now()`: the pipeline clock as a UTC timestamp.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PipelineNow {
    signature: Signature,
    micros: i64,
}

impl PipelineNow {
    pub fn new(now: DateTime<Utc>) -> Self {
        PipelineNow {
            signature: Signature::exact(vec![], Volatility::Stable),
            micros: now.timestamp_micros(),
        }
    }
}

impl ScalarUDFImpl for PipelineNow {
    fn name(&self) -> &str {
        "now"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(timestamp_type())
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(
            Some(self.micros),
            Some(Arc::from("UTC")),
        )))
    }
}

/// `today()`: the pipeline clock's calendar date in the business time zone.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BusinessToday {
    signature: Signature,
    days: i32,
}

impl BusinessToday {
    pub fn new(now: DateTime<Utc>, tz: Tz) -> Self {
        let date = now.with_timezone(&tz).date_naive();
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        BusinessToday {
            signature: Signature::exact(vec![], Volatility::Stable),
            days: (date - epoch).num_days() as i32,
        }
    }
}

impl ScalarUDFImpl for BusinessToday {
    fn name(&self) -> &str {
        "today"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Date32(Some(self.days))))
    }
}

/// `business_date(ts)`: the calendar date of a timestamp in the business time zone.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BusinessDate {
    signature: Signature,
    tz: Tz,
}

impl BusinessDate {
    pub fn new(tz: Tz) -> Self {
        BusinessDate {
            signature: Signature::exact(vec![timestamp_type()], Volatility::Immutable),
            tz,
        }
    }
}

impl ScalarUDFImpl for BusinessDate {
    fn name(&self) -> &str {
        "business_date"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{Array, Date32Array, TimestampMicrosecondArray};
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        let to_days = |micros: i64| {
            DateTime::<Utc>::from_timestamp_micros(micros)
                .map(|t| (t.with_timezone(&self.tz).date_naive() - epoch).num_days() as i32)
        };
        match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(v, _)) => Ok(
                ColumnarValue::Scalar(ScalarValue::Date32(v.and_then(to_days))),
            ),
            ColumnarValue::Array(a) => {
                let ts = a
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .ok_or_else(|| {
                        datafusion::common::DataFusionError::Internal(
                            "business_date expects microsecond timestamps".into(),
                        )
                    })?;
                let out: Date32Array = (0..ts.len())
                    .map(|i| {
                        if ts.is_null(i) {
                            None
                        } else {
                            to_days(ts.value(i))
                        }
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            other => Err(datafusion::common::DataFusionError::Internal(format!(
                "business_date: unexpected argument {other:?}"
            ))),
        }
    }
}
