//! A work item's one line in the reader's language. The nightly diff writes its summary in
//! English; Chinese readers get the same facts from the finding's fields.

use reconlight_core::workitems::{Finding, WorkItemKind};

use super::html::json_text as text;
use super::{Ctx, Lang};

/// The finding's line for `ctx`'s reader.
pub fn summary(ctx: &Ctx, f: &Finding) -> String {
    if ctx.lang == Lang::En {
        return f.summary.clone();
    }
    let ccy = f.currency.as_deref().unwrap_or("");
    let money =
        |d: Option<rust_decimal::Decimal>| d.map(|d| ctx.lang.money(d, ccy)).unwrap_or_default();
    let no = f.contract_no.as_deref().unwrap_or("");
    let seq = f.installment.map(|i| i.to_string()).unwrap_or_default();
    let bank_ref = f.bank_ref.as_deref().unwrap_or("");
    let d = &f.details;
    let diff = match (f.expected, f.received) {
        (Some(e), Some(r)) => Some((e - r).abs()),
        _ => None,
    };
    match f.kind {
        WorkItemKind::MissingPayment => format!(
            "{no} 第{seq}期：应收 {}，{} 到期，至今未到账",
            money(f.expected),
            text(&d["due_date"])
        ),
        WorkItemKind::PartialPayment => format!(
            "{no} 第{seq}期：应收 {}，实收 {}，尚差 {}",
            money(f.expected),
            money(f.received),
            money(diff)
        ),
        WorkItemKind::Overpayment => format!(
            "{no} 第{seq}期：应收 {}，实收 {}，多付 {}",
            money(f.expected),
            money(f.received),
            money(diff)
        ),
        WorkItemKind::DuplicatePayment => format!(
            "{no} 第{seq}期：应收 {} 已被全额支付不止一次，收款 {bank_ref} 疑似重复付款",
            money(f.expected)
        ),
        WorkItemKind::UnmatchedReceipt => format!(
            "收款 {bank_ref}（{}，付款人 {}，记账日 {}）未匹配到任何分期；附言：“{}”",
            money(f.received),
            text(&d["credit"]["payer"]),
            text(&d["credit"]["booking_date"]),
            text(&d["credit"]["remittance"])
        ),
        WorkItemKind::SuggestedMatch => format!(
            "收款 {bank_ref}（{}）可能支付 {no} 第{seq}期（置信度 {}%），请确认或拒绝",
            money(f.received),
            text(&d["suggestions"][0]["confidence"])
        ),
        WorkItemKind::AmountMismatch => format!(
            "{no}：CRM 金额 {}，CA 签署合同金额 {}",
            money(f.received),
            money(f.expected)
        ),
        WorkItemKind::SignatureNotCertified => format!(
            "{no}：CRM 显示已签署（{}），但没有完成的 CA 认证签署",
            d["signature_method"].as_str().unwrap_or("未注明方式")
        ),
        WorkItemKind::TermsUnparseable => format!(
            "{no}：付款条款“{}”无法解析为分期",
            text(&d["payment_terms"])
        ),
    }
}
