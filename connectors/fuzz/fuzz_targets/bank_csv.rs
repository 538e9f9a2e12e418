//! Bank CSV exports in a GBK layout like the generator's, with thousands separators.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use reconlight_formats::bank_csv::{CsvOptions, decode};

fn options() -> &'static CsvOptions {
    static OPTIONS: OnceLock<CsvOptions> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        toml::from_str(
            r#"
encoding = "gbk"
skip_lines = 2
date_formats = ["%Y%m%d"]
thousands_separator = ","
account = "755912345610801"
[columns]
booking_date = "交易日期"
credit = "收入金额"
debit = "支出金额"
reference = "交易流水号"
counterparty_name = "对方户名"
counterparty_account = "对方账号"
remittance = ["摘要"]
"#,
        )
        .expect("the CSV mapping parses")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = decode(data, options());
});
